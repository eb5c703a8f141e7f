"""Report tables from results that lack a figure: the table says n/a instead of the stage failing."""

from scaleproof.presentation import benchmark


def test_a_timing_without_a_cov_is_shown_as_na():
    """A batch timed in too few iterations for its block means has no CoV (null in benchmark.json); under load
    this stopped 06_cost_report with "NoneType doesn't define __round__" (fresh-clone make test, 2026-11-26)."""
    timing = {"batch": 1, "throughput": 900.0, "valid": False, "p50_ms": 1.0, "p90_ms": 1.5, "p99_ms": None,
              "cov": None, "iterations": 3, "reason": "too few iterations"}
    table = benchmark.timings_table({"engines": [{"engine": "torch-fp32", "timings": [timing]}]})
    row = table.iloc[0]
    assert row["CoV"] == "n/a" and row["P99 ms"] == "n/a" and row["P50 ms"] == 1.0
    assert row["inferences/s"] == "INVALID"
