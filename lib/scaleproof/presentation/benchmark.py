"""Stage 05's presentation: timings, LoadGen runs, the batcher sweep, capacity plots and scaling."""

from __future__ import annotations

import pandas as pd

from ..results import BenchmarkResult, PeakSearch, Pricing
from .common import rounded


def _shown_on_log(*values) -> bool:
    """A value a log axis can show: measured (not None or NaN) and positive."""
    return all(v is not None and v == v and v > 0 for v in values)


def _log_axes(ax, points: int, what: str, x: bool = True, y: bool = True) -> None:
    """Log scales for a panel with points; a panel with none keeps linear scales and says what it lacks: matplotlib
    cannot autoscale a log axis with no data ("Data cannot be log-scaled"), which stopped 05_benchmark when a
    loaded machine gave no sweep run a QPS (fresh-clone make test, two workers, 2026-11-26)."""
    if not points:
        ax.text(0.5, 0.5, f"no {what}", transform=ax.transAxes, ha="center", va="center", color="grey")
        return
    if x:
        ax.set_xscale("log")
    if y:
        ax.set_yscale("log")


def pricing_words(pricing: Pricing | None) -> str:
    if pricing is None:
        return "not recorded (a result from before confirmation runs)"
    words = (f"a priced capacity comes from a VALID confirmation run of at least {pricing.floor_s:g} s "
             f"(default floor {pricing.default_floor_s:g} s on this device)")
    return words + (f"; **{pricing.exploratory}**" if pricing.exploratory else "")


def batcher_words(bench: BenchmarkResult) -> str:
    lg = bench.loadgen
    swept = lg.sweep_max_batch or lg.sweep_queue_delay_ms
    chosen = "; ".join(f"{e.engine}: max batch {e.server.batcher.max_batch}, "
                       f"{e.server.batcher.max_queue_delay_ms:g} ms" for e in bench.engines)
    head = (f"swept max batch {lg.sweep_max_batch or [lg.batcher_max_batch]} × queue delay "
            f"{lg.sweep_queue_delay_ms or [lg.max_queue_delay_ms]} ms per engine, keeping the configuration "
            "with the highest Server peak" if swept else
            f"batches of at most {lg.batcher_max_batch}, a request waits at most {lg.max_queue_delay_ms:g} ms")
    return f"{head}; chosen: {chosen or 'n/a'}; static comparison: fixed batch {lg.static_batch}"


def batcher_sweep_table(bench: BenchmarkResult) -> pd.DataFrame:
    """Every swept batcher configuration per engine: its search's peak, and which one was chosen."""
    rows = []
    for e in bench.engines:
        chosen = e.server.batcher
        for c in e.server.sweep:
            peak = c.search.peak_qps
            rows.append({"engine": e.engine, "max batch": c.max_batch,
                         "queue delay ms": f"{c.max_queue_delay_ms:g}",
                         "search peak QPS": f"{peak:,.0f}" if peak is not None else "no VALID run",
                         "chosen": "chosen" if (c.max_batch, c.max_queue_delay_ms) ==
                         (chosen.max_batch, chosen.max_queue_delay_ms) else ""})
    return pd.DataFrame(rows).set_index(["engine", "max batch", "queue delay ms"]) if rows else pd.DataFrame()


def plot_batcher_sweep(bench: BenchmarkResult):
    """P99 against achieved QPS of every search run of every swept configuration, one panel per engine."""
    import matplotlib.pyplot as plt

    engines = [e for e in bench.engines if e.server.sweep]
    if not engines:
        return None
    fig, axes = plt.subplots(1, len(engines), figsize=(5 * len(engines), 4), squeeze=False)
    for ax, e in zip(axes[0], engines, strict=True):
        points = 0
        for i, c in enumerate(e.server.sweep):
            # a run LoadGen gave no QPS or P99 for (None, or NaN) has no point to plot
            runs = sorted((r for r in c.search.runs if _shown_on_log(r.qps, r.p99_ms)), key=lambda r: r.qps)
            points += len(runs)
            ax.plot([r.qps for r in runs], [r.p99_ms for r in runs], marker="o", color=f"C{i}", alpha=0.8,
                    label=f"batch ≤{c.max_batch}, {c.max_queue_delay_ms:g} ms")
        ax.axhline(bench.loadgen.sla_p99_ms, color="red", ls="--", lw=1, label="P99 bound")
        _log_axes(ax, points, "run with a measured QPS and P99")
        ax.set(xlabel="achieved QPS", ylabel="P99 latency, ms", title=e.engine)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def loadgen_table(bench: BenchmarkResult) -> pd.DataFrame:
    """Per engine: LoadGen's three scenarios, and what dynamic batching buys over static."""
    def peak(search: PeakSearch) -> str | float:
        if search.peak_qps is not None:
            return round(search.peak_qps)
        return "INVALID" if search.runs else "not searched"

    rows = []
    for e in bench.engines:
        ss, off, srv = e.single_stream, e.offline, e.server
        dyn, sta = srv.dynamic.peak_qps, srv.static.peak_qps
        rows.append({
            "engine": e.engine,
            "SingleStream P90 ms": round(ss.p90_ms, 3) if ss.valid else "INVALID",
            "SingleStream P99 ms": round(ss.p99_ms, 3) if ss.valid else "INVALID",
            "Offline samples/s": round(off.qps) if off.valid else "INVALID",
            "Server peak QPS, dynamic": peak(srv.dynamic),
            "Server peak QPS, static": peak(srv.static),
            "dynamic / static": round(dyn / sta, 2) if dyn and sta else "n/a",
            "search peaks QPS": " / ".join(f"{s.peak_qps:,.0f}" if s.peak_qps is not None else "none"
                                           for s in (srv.dynamic, *srv.dynamic_repeats)),
            "priced capacity QPS": (f"{e.capacity.qps:,.0f}" if e.capacity else
                                    e.not_confirmed.split(" (")[0] if e.not_confirmed else
                                    (e.capacity_reason or "none")[:80]),
        })
    return pd.DataFrame(rows).set_index("engine")


def plot_server(bench: BenchmarkResult):
    """QPS vs P99 of every Server run of the peak searches, and the batch sizes run at each peak."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    points = 0
    for i, e in enumerate(bench.engines):
        color = f"C{i}"
        for mode, marker in (("dynamic", "o"), ("static", "s")):
            search = e.server.dynamic if mode == "dynamic" else e.server.static
            runs = sorted((r for r in search.runs if _shown_on_log(r.target_qps, r.p99_ms)), key=lambda r: r.target_qps)
            points += len(runs)
            ax1.plot([r.target_qps for r in runs], [r.p99_ms for r in runs], ls="-" if mode == "dynamic" else ":",
                     color=color, alpha=0.6, label=f"{e.engine} {mode}")
            for r in runs:
                ax1.scatter(r.target_qps, r.p99_ms, marker=marker, color=color,
                            facecolors=color if r.valid else "none", zorder=3)
        peak_run = e.server.dynamic.peak_run
        if peak_run:
            sizes = {int(k): v for k, v in peak_run.batch_sizes.items()}
            total = sum(sizes.values())
            ax2.plot(sorted(sizes), [sizes[b] / total for b in sorted(sizes)], marker="o", color=color,
                     label=f"{e.engine} @ {peak_run.target_qps:,.0f} QPS")
    ax1.axhline(bench.loadgen.sla_p99_ms, color="red", ls="--", lw=1, label="P99 bound")
    _log_axes(ax1, points, "Server run with a measured P99")
    ax1.set(xlabel="target QPS (Poisson arrivals)", ylabel="P99 latency, ms",
            title="Server runs: filled = VALID, hollow = INVALID")
    ax2.set(xlabel="batch size run", ylabel="share of batches", title="Dynamic batch sizes at the peak")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no peak run, no line: matplotlib would warn of an empty legend
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def timings_table(bench: BenchmarkResult) -> pd.DataFrame:
    rows = []
    for e in bench.engines:
        for t in e.timings:
            rows.append({"engine": e.engine, "batch": t.batch,
                         "inferences/s": round(t.throughput) if t.valid else "INVALID",
                         "P50 ms": rounded(t.p50_ms, 3), "P90 ms": rounded(t.p90_ms, 3),
                         "P99 ms": rounded(t.p99_ms, 3), "CoV": rounded(t.cov, 3), "iterations": t.iterations,
                         "verdict": t.reason})
    return pd.DataFrame(rows)


def plot_throughput(bench: BenchmarkResult):
    """Throughput and P99 latency against batch size, per engine (valid timings only)."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    points = 0
    for e in bench.engines:
        ok = [t for t in e.timings if t.valid and _shown_on_log(t.throughput, t.p99_ms)]
        points += len(ok)
        ax1.plot([t.batch for t in ok], [t.throughput for t in ok], marker="o", label=e.engine)
        ax2.plot([t.batch for t in ok], [t.p99_ms for t in ok], marker="o", label=e.engine)
    measured = sorted({t.batch for e in bench.engines for t in e.timings})
    for ax, title, ylabel in ((ax1, "Throughput by batch size", "inferences/s"),
                              (ax2, "P99 latency by batch size", "ms")):
        _log_axes(ax, points, "valid timing", x=False, y=ax is ax2)
        if points:  # batch sizes are powers of two
            ax.set_xscale("log", base=2)
            ax.set_xticks(measured, [str(b) for b in measured])  # only the batch sizes that were measured
            ax.minorticks_off()
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax1.legend()
    fig.tight_layout()
    return fig


def scaling_markdown(bench: BenchmarkResult) -> str:
    """The per-device scaling measurement of 05_benchmark, or why there is none."""
    sc = bench.scaling
    if not sc:
        return "No per-device scaling measured (scaling_devices is 0): a multi-accelerator instance is priced " \
               "assuming linear scaling, and the report says so."
    if sc.skipped is not None:
        return f"Per-device scaling skipped: {sc.skipped}."
    n = len(sc.devices)
    one, all_ = sc.peak_qps["1"], sc.peak_qps[str(n)]
    factor = "not measured (a search found no VALID rate)" if sc.scaling_factor is None else \
        f"**{sc.scaling_factor:.3f}**"
    rng = sc.factor_range
    spread = f", range {rng[0]:.3f}–{rng[1]:.3f} over the repeated searches" if rng else ""
    return (f"Scaling of `{sc.engine}` on {sc.device_kind}: Server capacity {one or 0:,.0f} QPS on 1 device, "
            f"{all_ or 0:,.0f} QPS on {n} ({', '.join(sc.devices)}); scaling factor {factor}{spread}. "
            f"Method: {sc.method if sc.method is not None else 'peak(N) / (N × peak(1))'}.")
