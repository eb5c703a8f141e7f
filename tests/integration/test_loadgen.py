"""LoadGen drives real runs here: an overloaded engine is INVALID with LoadGen's reason, and the peak
search converges near a known capacity."""

import time

import numpy as np
import pytest

from scaleproof.backends.base import Engine
from scaleproof.bench.loadgen import (
    LoadgenSettings,
    Scenario,
    find_peak,
    read_detail_log,
    retry_fits,
    run_scenario,
    run_server,
)

SAMPLES = {"input": np.zeros((64, 1, 4, 4), np.float32)}


class SlowEngine(Engine):
    """Service time 2 ms + 0.25 ms per sample: at batch 8, 8 / 4 ms = 2,000 samples/s at most."""

    name, backend, precision, device = "slow", "test", "fp32", "cpu"
    max_batch = 8

    def infer(self, x):
        n = len(x["input"])
        time.sleep(0.002 + 0.00025 * n)
        return [np.zeros((n, 2), np.float32)]


CFG = LoadgenSettings(min_duration_s=0.5, min_queries=50, sla_p99_ms=50.0, max_batch=8, max_delay_ms=2.0)


def test_overloaded_server_run_is_invalid_with_loadgens_reason(tmp_path):
    run = run_scenario(SlowEngine(), SAMPLES, Scenario.server, CFG, tmp_path, target_qps=20_000)
    assert not run.valid and run.reason != "VALID"
    assert "Performance constraints satisfied : NO" in run.reason or "Early stopping" in run.reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlperf_log_detail.txt", "mlperf_log_summary.txt"]
    assert read_detail_log(tmp_path / "mlperf_log_detail.txt")["result_validity"] == "INVALID"
    # the sample library loaded the samples before the SUT started; LoadGen asked for all of them
    assert run.extra["performance_samples"] == len(SAMPLES["input"])


def test_early_stopping_shortfall_is_retried_with_the_queries_loadgen_asks_for(tmp_path):
    run = run_server(SlowEngine(), SAMPLES, CFG, 200, tmp_path)  # 0.5 s at 200 QPS: too few queries at first
    assert run.valid and "retried_for_early_stopping" in run.extra and run.queries > 100


def test_retry_budget_is_five_minimum_durations_or_sixty_seconds():
    # early stopping asks ~460 queries at low rates: a slow but valid engine gets the time to serve them
    assert retry_fits(459, 8, 1.0) and not retry_fits(459, 7, 1.0)
    assert retry_fits(4590, 77, 10.0) and not retry_fits(4590, 76, 10.0)  # 5 x 10 s < 60 s: 60 s it is
    assert retry_fits(459_000, 1_000, 100.0) and not retry_fits(459_000, 900, 100.0)  # 5 x 100 s = 500 s


def test_light_server_run_is_valid_and_batches(tmp_path):
    # LoadGen's early stopping needs several hundred queries to vouch for a P99: 1,000 QPS for 1 s
    cfg = LoadgenSettings(min_duration_s=1.0, min_queries=500, sla_p99_ms=50.0, max_batch=8, max_delay_ms=2.0)
    run = run_scenario(SlowEngine(), SAMPLES, Scenario.server, cfg, tmp_path, target_qps=1000)
    assert run.valid and run.p99_ms < 50 and run.queries >= 500
    assert max(run.batch_sizes) <= 8 and sum(k * v for k, v in run.batch_sizes.items()) == run.queries


def test_offline_and_single_stream_run(tmp_path):
    off = run_scenario(SlowEngine(), SAMPLES, Scenario.offline, CFG, tmp_path / "o", expected_qps=3000)
    assert off.valid and 500 < off.qps < 2100 and max(off.batch_sizes) == 8
    ss = run_scenario(SlowEngine(), SAMPLES, Scenario.single_stream, CFG, tmp_path / "s", expected_latency_s=0.00225)
    assert ss.valid and set(ss.batch_sizes) == {1} and ss.p90_ms >= 2.0


@pytest.mark.slow
def test_peak_search_converges_near_the_known_capacity(tmp_path):
    capacity = 8 / (0.002 + 0.00025 * 8)  # 2,000 samples/s

    def run_at(q):
        return run_server(SlowEngine(), SAMPLES, CFG, q, tmp_path / f"{q:.0f}").as_dict()

    found = find_peak(run_at, start_qps=500, max_runs=7, tolerance=0.1)
    assert found.peak_qps is not None and 0.5 * capacity <= found.peak_qps <= 1.05 * capacity, found.reason
    assert found.peak_run["valid"] and found.peak_run["target_qps"] == found.peak_qps


def fake_server(capacity):
    def run_at(q):
        return {"target_qps": q, "valid": q <= capacity, "p99_ms": 1.0, "reason": "VALID" if q <= capacity else "slow"}
    return run_at


@pytest.mark.parametrize("start", [10.0, 1234.0, 100_000.0])
def test_search_brackets_then_bisects_from_any_start(start):
    found = find_peak(fake_server(1234.0), start, max_runs=30, tolerance=0.01)
    assert 1234.0 * 0.99 <= found.peak_qps <= 1234.0
    assert all(r["valid"] == (r["target_qps"] <= 1234.0) for r in found.runs)


def test_search_is_bounded_and_reports_no_valid_run():
    found = find_peak(fake_server(0.0), 1000.0, max_runs=4)
    assert found.peak_qps is None and found.peak_run is None and len(found.runs) == 4
    assert "no VALID run in 4 tries" in found.reason
