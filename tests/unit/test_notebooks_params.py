"""The notebooks' parameter cells and lib's Params stay in step; notebooks are committed clean and paired."""

import ast
import json
from pathlib import Path

import jupytext
import papermill
import pytest

from scaleproof.config import Params, parameters_cell
from scaleproof.paths import STAGES, notebook_parameters, notebooks_dir

NOTEBOOKS = [notebooks_dir() / f"{s}.ipynb" for s in STAGES]
# 07 runs after a fleet, 08 after a published run, 09 over the ledger, 10 over priced runs: not in the chain
ALL_NOTEBOOKS = [*NOTEBOOKS, *(notebooks_dir() / f"{n}.ipynb"
                               for n in ("07_fleet_report", "08_deploy", "09_ledger", "10_prospectus"))]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_matches_params(nb: Path):
    cells = json.loads(nb.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one parameters cell"
    declared = papermill.inspect_notebook(str(nb))
    assert "run_dir" in declared
    # papermill skips a line it cannot parse (e.g. a comment holding "="): then it would never inject it
    source = "".join(tagged[0]["source"])
    assigned = [ast.unparse(n.target) for n in ast.parse(source).body if isinstance(n, ast.AnnAssign)]
    assert assigned == list(declared), f"{nb.name}: papermill sees {list(declared)}, the cell assigns {assigned}"
    assert notebook_parameters(nb) == list(declared)  # what stages record as made_with, read without papermill
    # the cell is generated from Params (types, defaults, help): python scripts/sync_notebook_params.py rewrites it
    assert source.strip() == parameters_cell(list(declared)), f"{nb.name}: run scripts/sync_notebook_params.py"
    assert all(info["inferred_type_name"] != "None" for info in declared.values())  # --help-notebook shows a type
    defaults = Params().values()
    for name, info in declared.items():
        assert name in Params.model_fields, f"{nb.name}: {name} is not a Params field"
        assert info["help"], f"{nb.name}: {name} has no trailing comment"
        assert ast.literal_eval(info["default"]) == defaults[name], f"{nb.name}: default of {name} differs from Params"


# Params checks these together (every batch size <= max_batch): a notebook that declares one of them and
# not the others would check a user's value against a default and refuse a valid profile.
LINKED = {"batch_sizes", "max_batch", "batcher_max_batch", "static_batch", "trt_min_batch", "trt_opt_batch"}


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_linked_parameters_are_declared_together(nb: Path):
    declared = set(papermill.inspect_notebook(str(nb))) & LINKED
    assert not declared or declared == LINKED, f"{nb.name} declares {sorted(declared)} without {sorted(LINKED - declared)}"


@pytest.mark.parametrize("nb", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_paired(nb: Path):
    raw = json.loads(nb.read_text())
    for c in raw["cells"]:
        if c["cell_type"] == "code":
            assert not c["outputs"] and c["execution_count"] is None, f"{nb.name} has outputs"
    paired = jupytext.read(nb.with_suffix(".py"))
    assert [c.source for c in paired.cells] == [("".join(c["source"])) for c in raw["cells"]], \
        f"{nb.name} and its .py differ: run `jupytext --sync notebooks/{nb.stem}.py`"


@pytest.mark.parametrize("nb", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_stay_thin(nb: Path):
    """Logic lives in lib/: a notebook defines no functions or classes."""
    src = jupytext.read(nb.with_suffix(".py"))
    for cell in src.cells:
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]


@pytest.mark.parametrize("nb", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_are_read_as_papermill_reads_them(nb: Path):
    assert notebook_parameters(nb) == list(papermill.inspect_notebook(str(nb)))


@pytest.mark.parametrize("source", ["x: int = 1\ny = 2", "%matplotlib inline\nx = 1", "a = b = 1\nc = 3",
                                    "x: int\ny: str = 'a'", "x = 1\nx = 2\nz = 3", None])
def test_parameters_of_other_cells_are_read_as_papermill_reads_them(tmp_path, source):
    cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]} if source is not None else {},
            "source": source or "q = 1", "outputs": [], "execution_count": None}
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                                                         "display_name": "Python 3"}},
                              "nbformat": 4, "nbformat_minor": 5}))
    assert notebook_parameters(nb) == list(papermill.inspect_notebook(str(nb)))


@pytest.mark.parametrize("stage", STAGES)
def test_every_parameter_a_stage_reads_is_declared_by_its_notebook(stage: str):
    """papermill injects only what a notebook declares: a Params field the stage's module reads but its notebook does
    not declare is silently its default in a chained run (02_calibrate once ignored onnx_gpu so)."""
    import re

    from scaleproof import stages as stage_modules

    module = Path(stage_modules.__file__).with_name(f"{stage.split('_', 1)[1]}.py")
    read = set(re.findall(r"\bparams\.(\w+)", module.read_text())) & set(Params.model_fields)
    declared = set(papermill.inspect_notebook(str(notebooks_dir() / f"{stage}.ipynb")))
    assert read <= declared, f"{stage}: reads {sorted(read - declared)} that its notebook does not declare"
