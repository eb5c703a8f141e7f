"""Real LoadGen runs: a slow model gets its Server rate within the duration budget (or is said to be unmeasurable
within it), and an engine planted clearly behind the leader is searched, labelled and not confirmed."""

import numpy as np
import pytest

from scaleproof.config import Params
from scaleproof.stages.benchmark import confirm_server, loadgen_settings, search_server, server_search, settle
from tests.stand_in_engines import BehindEngine, SleepEngine, SlowModelEngine

SAMPLES = {"input": np.zeros((64, 4), np.float32)}


def slow_params(**more) -> Params:
    return Params(sla_p99_ms=200.0, batcher_max_batch=8, max_queue_delay_ms=2.0, loadgen_min_duration_s=0.5,
                  loadgen_min_queries=1, peak_search_runs=3, peak_tolerance=0.2, **more)


@pytest.mark.slow
def test_a_slow_model_gets_a_valid_server_rate_within_the_duration_budget(tmp_path):
    # 50 ms + 2 ms per sample under a 200 ms bound. From 8 QPS the bound holds, but early stopping's ~460 queries
    # take ~58 s there, 29 s at 16: over a 20 s budget, so the search climbs (it used to halve to nothing) to 32 QPS,
    # where they take ~15 s
    params = slow_params(server_duration_budget_s=20.0)
    found = server_search(SlowModelEngine(), SAMPLES, loadgen_settings(params), 8.0, params, tmp_path, tmp_path,
                          "dynamic", latency_floor_ms=52.0)
    assert found["peak_qps"] is not None and found["peak_qps"] >= 16, found["reason"]
    run = found["peak_run"]
    assert run["valid"] and run["p99_ms"] < 200 and run["p50_ms"] >= 50 and run["queries"] >= 400
    assert "retried_for_early_stopping" in run["extra"]
    held = [r for r in found["runs"] if r["extra"].get("latency_held")]
    assert held and held[0]["target_qps"] == 8.0 and "server_duration_budget_s" in held[0]["reason"]
    assert min(r["target_qps"] for r in found["runs"]) == 8.0  # never under the rate whose latency held


def test_a_slow_model_unmeasurable_within_the_budget_is_said_to_be(tmp_path):
    params = slow_params(server_duration_budget_s=2.0)
    found = server_search(SlowModelEngine(), SAMPLES, loadgen_settings(params), 8.0, params, tmp_path, tmp_path,
                          "dynamic", latency_floor_ms=52.0)
    assert found["peak_qps"] is None and [r["target_qps"] for r in found["runs"]] == [8.0, 16.0, 32.0]
    assert "not measurable within the duration budget" in found["reason"], found["reason"]


@pytest.mark.slow
def test_an_engine_planted_behind_the_leader_is_searched_labelled_and_not_confirmed(tmp_path):
    # a 200 ms bound: the peaks sit well inside the engines' capacities (2,000 and 400 samples/s), so a loaded
    # machine moves them less than the five-fold gap between the two
    params = Params(sla_p99_ms=200.0, batcher_max_batch=8, max_queue_delay_ms=2.0, loadgen_min_duration_s=0.3,
                    loadgen_min_queries=50, peak_search_runs=6, peak_tolerance=0.1, peak_repeats=2,
                    min_priced_duration_s=1.0, confirm_steps=5, remeasure_flagged=False)
    cfg = loadgen_settings(params)
    engines = {"sleep": SleepEngine(), "behind": BehindEngine()}
    rows = []
    for name, engine in engines.items():
        server = search_server(engine, SAMPLES, cfg, 500.0, params, tmp_path / name, tmp_path, 2.3, gpu=False)
        rows.append({"engine": name, "baseline": False, "validated": True, "timings": [], "offline": {},
                     "server": server})
    asked = []

    def confirm_row(row):
        asked.append(row["engine"])
        return confirm_server(engines[row["engine"]], SAMPLES, cfg, row["server"], params,
                              tmp_path / row["engine"], tmp_path, gpu=False)

    # five rungs reach 60% of the leader's lowest peak: its confirmation holds on a loaded machine too (were it
    # refused, the planted engine would lead what is left and be confirmed: test_confirm_plan covers that case)
    settle(rows, confirm_row, lambda row: pytest.fail("nothing is remeasured"), params, floor_s=1.0)
    leader, behind = rows
    assert asked == ["sleep"]
    assert leader["capacity"] and leader["capacity"]["duration_s"] >= 1.0 and not leader.get("not_confirmed")
    assert behind["capacity"] is None and behind["server"]["confirmation"] is None
    assert behind["server"]["dynamic"]["peak_qps"] and behind["server"]["dynamic_repeats"][0]["peak_qps"]
    assert behind["not_confirmed"].startswith("not confirmed: behind sleep by "), behind["not_confirmed"]
    assert not list((tmp_path / "behind").glob("server-confirm-*"))  # no confirmation run was made


def test_a_ladder_starts_where_the_runs_earlier_confirmations_held(tmp_path):
    """The baseline's confirmation held 80% of its searches' evidence: the next engine's ladder starts at 80% of
    its own evidence (a real LoadGen run there), and benchmark.json keeps both the evidence and why it started lower."""
    from scaleproof.bench.capacity import machine_hold

    params = Params(sla_p99_ms=200.0, batcher_max_batch=8, max_queue_delay_ms=2.0, loadgen_min_duration_s=0.3,
                    loadgen_min_queries=50, peak_tolerance=0.1, min_priced_duration_s=1.0, confirm_steps=3)
    baseline = {"engine": "torch-fp32", "server": {"confirmation": {
        "run": {"target_qps": 800.0}, "evidence_qps": 1000.0, "start_qps": 1000.0}}}
    hold = machine_hold([baseline])
    assert hold["ratio"] == 0.8 and hold["why"].startswith("torch-fp32's confirmation held 80%")
    server = {"batcher": {"max_batch": 8, "max_queue_delay_ms": 2.0}, "dynamic_repeats": [],
              "dynamic": {"peak_qps": 400.0, "runs": [{"target_qps": 400.0, "valid": True}]}}
    conf = confirm_server(SleepEngine(), SAMPLES, loadgen_settings(params), server, params, tmp_path, tmp_path,
                          gpu=False, hold=hold)
    assert conf["evidence_qps"] == 400.0 and conf["start_qps"] == conf["tries"][0]["target_qps"] == 320.0
    assert conf["hold"] == hold and machine_hold([{"engine": "next", "server": {"confirmation": conf}}]) is None
    assert conf["run"]["valid"] and "80% of the search's peak (400 QPS): torch-fp32's confirmation held" in \
        conf["start"]
