"""Report tables from typed results: figures a result lacks are shown as n/a instead of the stage failing, and the
views read the results' attributes (what the models name), not string keys."""

from scaleproof import results
from scaleproof.presentation import benchmark, build, cost_report


def test_a_timing_without_a_cov_is_shown_as_na():
    """A batch timed in too few iterations for its block means has no CoV (null in benchmark.json); under load
    this stopped 06_cost_report with "NoneType doesn't define __round__" (fresh-clone make test, 2026-11-26)."""
    timing = results.Timing.model_validate({
        "batch": 1, "iterations": 3, "duration_s": 0.003, "p50_ms": 1.0, "p90_ms": 1.5, "p99_ms": None,
        "mean_ms": 1.1, "cov": None, "latency_cov": None, "throughput": 900.0, "valid": False,
        "reason": "too few iterations"})
    engine = results.BenchmarkedEngine.model_construct(engine="torch-fp32", timings=[timing])
    table = benchmark.timings_table(results.BenchmarkResult.model_construct(engines=[engine]))
    row = table.iloc[0]
    assert row["CoV"] == "n/a" and row["P99 ms"] == "n/a" and row["P50 ms"] == 1.0
    assert row["inferences/s"] == "INVALID"


def fleet(instances: int, annual_usd: float, usd_per_1m: float) -> dict:
    return {"instances": instances, "monthly_usd": annual_usd / 12, "annual_usd": annual_usd, "usd_per_1m": usd_per_1m,
            "fleet_usd_per_1m": usd_per_1m * 3}


def priced(engine: str, baseline: bool, qps: float, **more) -> dict:
    """One engine of cost_report.json, as stages.cost_report writes it."""
    return {"engine": engine, "backend": engine.split("-")[0], "precision": engine.split("-")[1], "baseline": baseline,
            "batching": "dynamic: max batch 32, max queue delay 2 ms", "p99_ms": 3.25,
            "loadgen_log": f"benchmark/loadgen/{engine}/server-confirm-00", "memory_mb": 398.6,
            "top1_delta_pts": 0.0, "top1_agreement": 1.0, "accuracy": "top-1 +0.00 pt", "flags": [],
            "remeasured": None, "bench_index": 0, "qps": qps, "instance_qps": qps, **fleet(5, 3909.15, 0.000813),
            "scenarios": [{"growth": 1.0, **fleet(5, 3909.15, 0.000813)}],
            "price_scenario": {"price_change": -0.2, **fleet(5, 3127.32, 0.00065)}, **more}


def typed_cost_report(*engines: dict) -> results.CostReport:
    return results.CostReport.model_validate({
        "stage": "06_cost_report", "status": "priced", "exploratory": False,
        "measured_hardware": {"gpu": None, "cpu": {"model": "AMD EPYC", "usable_cores": 2}},
        "price": {"id": "aws-c7i-large", "accelerator": "2 vCPU (Xeon)", "offer": "AWS c7i.large", "usd_per_hour": 0.08925,
                  "source": "AWS price list", "as_of": "2026-11", "confidence": "low", "matches": "cpu-",
                  "table": "data/prices.csv (shipped with scaleproof)"},
        "anomaly_rules": {"search_open": "a peak search ran out of runs before its bracket closed"},
        "assumptions": {"daily_requests": 2.88e9, "peak_to_average": 3.0, "peak_qps": 100000.0,
                        "target_utilization": 0.7, "redundancy": 1, "growth": [1.0], "price_change": -0.2,
                        "revenue_per_1k": 0.0, "hours_per_year": 8760, "capacity": "confirmed Server QPS",
                        "sla_p99_ms": 15.0, "inference": "one sample through the model",
                        "scaling": {"accelerators_per_instance": 1, "factor": 1.0, "source": "one accelerator",
                                    "usd_per_instance_hour": 0.08925},
                        "range": "run-to-run spread"},
        "baseline": engines[0]["engine"], "best": engines[-1]["engine"], "engines": list(engines), "excluded": [],
        "claims": []})


def test_the_engines_table_shows_what_the_typed_cost_report_holds():
    cost = typed_cost_report(priced("torch-fp32", True, 11740.3),
                             priced("onnxruntime-int8", False, 55807.0, speedup_vs_baseline=4.7533, memory_mb=1234.4,
                                    flags=[{"rule": "search_open", "detail": "not closed to 30%"}]))
    table = cost_report.engines_table(cost)
    row = table.loc["onnxruntime-int8"]
    assert row["peak memory MB (GPU allocated, else RSS)"] == "1,234" and row["confirmed Server QPS"] == "55,807"
    assert row["speed-up"] == "4.75×" and row["flags"] == "search_open"
    assert table.loc["torch-fp32", "speed-up"] == "1.00×" and table.loc["torch-fp32", "flags"] == "none"
    assert "FLAGGED: not closed to 30%" in cost_report.anomalies_table(cost).loc["onnxruntime-int8"].tolist()


def test_the_tensorrt_table_reads_the_typed_build_records():
    common = {"backend": "tensorrt", "mode": "", "baseline": False, "sidecar": "engines/x/e.json",
              "engine_sha256": "0" * 64, "source": "calibrate/model.int8.onnx", "source_sha256": "1" * 64,
              "build_seconds": 12.5, "size_bytes": 1024}
    built = results.BuildResult.model_validate({
        "stage": "03_build", "device_slug": "h100", "backend_requested": "auto", "baseline": "torch-fp32",
        "engines": [{**common, "name": "tensorrt-int8", "precision": "int8",
                     "tensorrt": {"typing": "strong", "layers": {"onnx_nodes": 10, "engine_layers": 4, "fused_layers": 2,
                                                                 "network_layers_in_fused": 6, "reformat_layers": 1},
                                  "timing_cache": {"loaded": "hit", "reason": "123 bytes"}}},
                    {**common, "name": "tensorrt-fp16", "precision": "fp16", "tensorrt": {"typing": "weak"}}],
        "skipped": []})
    table = build.tensorrt_table(built)
    assert table.loc["tensorrt-int8"].tolist() == ["strong", 10, 4, 2, 6, 1, "hit"]
    assert table.loc["tensorrt-fp16", "typing"] == "weak" and table.loc["tensorrt-fp16"].isna().sum() == 6


def test_the_low_precision_table_says_what_each_torchao_engine_quantized():
    common = {"backend": "torch", "mode": "compile", "baseline": False, "sidecar": "engines/x/e.json",
              "engine_sha256": "0" * 64, "source": "m", "source_sha256": "1" * 64, "build_seconds": 1.0,
              "size_bytes": 1024}
    lp = {"linear_layers": 1, "quantized_layers": [], "kept_layers": [], "left_alone": {"fc": "1 rows per sample"},
          "quantized_flops_share": 0.0, "conv_flops_share": 0.9996, "statement": "53 convolution layers (99.96% ...)"}
    built = results.BuildResult.model_validate({
        "stage": "03_build", "device_slug": "h100", "backend_requested": "torch", "baseline": "torch-fp32",
        "engines": [{**common, "name": "torch-int8-compile", "precision": "int8", "low_precision": lp},
                    {**common, "name": "torch-fp16-compile", "precision": "fp16"}], "skipped": []})
    table = build.low_precision_table(built)
    assert list(table.index) == ["torch-int8-compile"]
    assert table.loc["torch-int8-compile"].tolist()[:5] == [1, 0, 1, "0.0%", "100.0%"]
    no_lp = results.BuildResult.model_validate({**built.model_dump(), "engines": [built.engines[1].model_dump()]})
    assert "no torchao engine" in build.low_precision_table(no_lp).loc[0, "note"]


def test_the_sweep_plot_leaves_out_a_run_loadgen_gave_no_qps_for():
    """A search run with a null QPS or P99 has no point: the plot draws the others (before, sorting by QPS raised)."""
    def run(qps, p99):
        return results.LoadgenRun.model_validate({
            "scenario": "server", "valid": p99 is not None and p99 < 15, "reason": "", "target_qps": 100.0,
            "qps": qps, "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": p99, "queries": 10, "batch_sizes": {},
            "log_dir": "x", "batching": "dynamic"})
    search = results.PeakSearch.model_construct(runs=[run(200.0, 20.0), run(None, None), run(100.0, 5.0),
                                                      run(float("nan"), 3.0)])
    point = results.SweepPoint.model_construct(max_batch=8, max_queue_delay_ms=2.0, search=search)
    server = results.ServerMeasurement.model_construct(sweep=[point])
    bench = results.BenchmarkResult.model_construct(
        engines=[results.BenchmarkedEngine.model_construct(engine="e", server=server)],
        loadgen=results.Loadgen.model_construct(sla_p99_ms=15.0))
    line = benchmark.plot_batcher_sweep(bench).axes[0].lines[0]
    assert list(line.get_xdata()) == [100.0, 200.0] and list(line.get_ydata()) == [5.0, 20.0]


def test_plots_with_nothing_to_show_on_a_log_axis_draw_and_say_so():
    """A loaded machine gave no sweep run a QPS: the log-scaled panel had no data, matplotlib raised "Data cannot
    be log-scaled" when drawing, and 05_benchmark failed the run (fresh-clone make test, two workers, 2026-11-26).
    Each plot draws instead, its empty panel on linear axes with a note."""
    def run(qps, p99):
        return results.LoadgenRun.model_validate({
            "scenario": "server", "valid": False, "reason": "", "target_qps": 100.0, "qps": qps, "p50_ms": None,
            "p90_ms": None, "p99_ms": p99, "queries": 0, "batch_sizes": {}, "log_dir": "x", "batching": "dynamic"})
    unmeasured = results.PeakSearch.model_construct(runs=[run(None, None)], peak_run=None)
    no_qps = results.PeakSearch.model_construct(runs=[run(None, None), run(0.0, 4.0)], peak_run=None)
    timing = results.Timing.model_validate({
        "batch": 8, "iterations": 3, "duration_s": 0.003, "p50_ms": None, "p90_ms": None, "p99_ms": None,
        "mean_ms": None, "cov": None, "latency_cov": None, "throughput": 0.0, "valid": False, "reason": "too few"})
    server = results.ServerMeasurement.model_construct(
        sweep=[results.SweepPoint.model_construct(max_batch=8, max_queue_delay_ms=2.0, search=no_qps)],
        dynamic=unmeasured, static=unmeasured)
    bench = results.BenchmarkResult.model_construct(
        engines=[results.BenchmarkedEngine.model_construct(engine="e", server=server, timings=[timing])],
        loadgen=results.Loadgen.model_construct(sla_p99_ms=15.0))
    for plot, note in ((benchmark.plot_batcher_sweep, "no run with a measured QPS and P99"),
                       (benchmark.plot_server, "no Server run with a measured P99"),
                       (benchmark.plot_throughput, "no valid timing")):
        fig = plot(bench)
        fig.canvas.draw()  # where matplotlib raised
        ax = fig.axes[0]
        assert ax.get_xscale() == ax.get_yscale() == "linear", plot.__name__
        assert note in [t.get_text() for t in ax.texts], plot.__name__
