"""What every stage's presentation shares: number formats, the measured hardware, the run's header, and the offline HTML rendering of an executed notebook."""

from __future__ import annotations

from pathlib import Path

from .. import paths
from ..results import CostReport, Hardware


def fmt_money(x: float) -> str:
    # "USD" rather than "$": Jupyter's Markdown renderer reads $...$ as LaTeX
    return f"{x:,.0f} USD" if abs(x) >= 100 else f"{x:,.4g} USD"


def rounded(value: float | None, digits: int) -> float | str:
    """A figure for a table; "n/a" where there is none (a CoV needs enough iterations for its block means:
    the results file holds null for it then)."""
    return "n/a" if value is None or value != value else round(value, digits)


def bench_hardware(cost: CostReport) -> Hardware:
    return cost.measured_hardware or Hardware()


def measured_on(hw: Hardware) -> str:
    """The measured machine in words: its GPU, else its CPU (the price row only says what it is priced as)."""
    if hw.gpu:
        return f"**{hw.gpu.name}** (compute capability {hw.gpu.compute_capability})"
    if not hw.cpu:
        return "this machine"
    isa = f" ({hw.cpu.isa_level})" if hw.cpu.isa_level else ""
    return f"**{hw.cpu.model}**{isa}, {hw.cpu.usable_cores} cores"


def run_header(run_dir: Path) -> str:
    """Run id, date, git commit and key package versions: the first thing an auditor reads."""
    import datetime as dt

    from ..provenance import git_state, package_versions

    git = git_state() or {}
    versions = package_versions()
    keys = ("torch", "onnxruntime", "tensorrt", "mlcommons-loadgen", "transformers")
    pkgs = ", ".join(f"{k} {versions[k]}" for k in keys if k in versions)
    commit = f"`{git['commit'][:12]}`" + (" (uncommitted changes)" if git.get("dirty") else "") if git.get("commit") \
        else "not a git checkout"
    return (f"**Run** `{Path(run_dir).name}` · **date** {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · "
            f"**scaleproof commit** {commit} · **packages** {pkgs}")


def published_path(run_dir: Path) -> Path:
    """Where the run will be once published: a staging folder `OUT/.staging/ID` becomes `OUT/ID`."""
    run_dir = Path(run_dir).resolve()
    return run_dir.parent.parent / run_dir.name if run_dir.parent.name == ".staging" else run_dir


def render_html(executed_notebook: Path, out: Path) -> Path:
    """The executed report notebook as standalone HTML with no code cells (what auditors read)."""
    import nbformat
    from nbconvert import HTMLExporter

    from ..provenance import atomic_write_bytes

    nb = nbformat.read(str(executed_notebook), as_version=4)
    # the "offline" template (lib/scaleproof/templates) drops the lab template's require.js/MathJax from a CDN
    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(paths.PACKAGE_DIR / "templates")],
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    return atomic_write_bytes(out, body.encode("utf-8"))
