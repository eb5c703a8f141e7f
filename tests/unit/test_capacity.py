"""What may be priced: the achieved QPS of a long, VALID confirmation run at the lowest peak the searches
found, stepping down while INVALID; short runs are exploratory; the batcher sweep keeps the best configuration."""


import pytest

from scaleproof.bench.capacity import (
    batcher_grid,
    capacity,
    choose_batcher,
    confirm,
    pricing_floor,
    step_targets,
)


def search(peak, invalid_above=None):
    runs = [{"target_qps": peak, "valid": True, "p99_ms": 5.0, "log_dir": f"l{peak}", "batching": "dynamic"}]
    if invalid_above:
        runs.append({"target_qps": invalid_above, "valid": False})
    return {"peak_qps": peak, "peak_run": runs[0] if peak else None, "runs": runs, "reason": "r"}


def confirmed(target, achieved, duration_s=10.0):
    run = {"target_qps": target, "qps": achieved, "valid": True, "p99_ms": 7.0, "log_dir": "confirm-00",
           "batching": "dynamic", "min_duration_s": duration_s, "queries": int(achieved * duration_s)}
    return {"run": run, "tries": [run], "reason": f"VALID at {target:,.0f} QPS target"}


def test_capacity_is_what_the_confirmation_run_achieved_not_a_target():
    cap, why = capacity({"dynamic": search(1000, 1100), "confirmation": confirmed(1000, 987.0)}, floor_s=10)
    assert cap["qps"] == 987.0 and cap["target_qps"] == 1000 and cap["log_dir"] == "confirm-00"
    assert cap["qps_upper"] == 1100 and "highest VALID and lowest INVALID" in cap["range_source"]
    assert why.startswith("confirmed")


def test_repeated_searches_give_the_run_to_run_spread():
    server = {"dynamic": search(1000, 1100), "dynamic_repeats": [search(900, 990), search(1050, 1200)],
              "confirmation": confirmed(900, 895.0)}
    cap, _ = capacity(server, floor_s=10)
    assert cap["qps"] == 895.0 and cap["qps_upper"] == 1050 and cap["peaks"] == [1000, 900, 1050]
    assert "run-to-run spread of 3" in cap["range_source"]


def test_no_valid_peak_or_no_confirmation_means_no_capacity():
    assert capacity({"dynamic": search(None)}, 10)[0] is None
    cap, why = capacity({"dynamic": search(1000), "dynamic_repeats": [search(None)]}, 10)
    assert cap is None and why.startswith("no VALID Server run in search 2")
    failed = {"run": None, "tries": [], "reason": "not confirmed: 3 longer run(s) were INVALID"}
    assert capacity({"dynamic": search(1000), "confirmation": failed}, 10) == (None, failed["reason"])


def test_a_too_short_run_is_exploratory_and_not_priced():
    """`--set loadgen_min_duration_s=0.01` once published 141,187 QPS from 1,397 queries; a run under the floor
    is now never a capacity, and a floor talked below the device's default labels the whole run."""
    cap, why = capacity({"dynamic": search(1000), "confirmation": confirmed(1000, 990.0, duration_s=0.05)}, 10)
    assert cap is None and why.startswith("exploratory, not priced") and "0.05 s" in why
    assert pricing_floor(0, gpu=False) == {"floor_s": 10.0, "default_floor_s": 10.0, "exploratory": None}
    assert pricing_floor(0, gpu=True)["floor_s"] == 30.0
    low = pricing_floor(0.05, gpu=False)
    assert low["floor_s"] == 0.05 and low["exploratory"].startswith("exploratory, not priced")
    assert pricing_floor(60, gpu=True)["exploratory"] is None


def fake_server(capacity_qps):
    def run_at(q):
        ok = q <= capacity_qps
        return {"target_qps": q, "qps": min(q, capacity_qps), "valid": ok, "p99_ms": 1.0,
                "reason": "VALID" if ok else "Performance constraints satisfied : NO"}
    return run_at


def test_confirmation_steps_down_in_widening_steps_until_valid():
    out = confirm(fake_server(820.0), 1000.0, tolerance=0.05, steps=5)
    assert [r["target_qps"] for r in out["tries"]] == pytest.approx([1000.0, 950.0, 900.0, 800.0])
    assert out["run"]["valid"] and "3 step(s) down from 1,000" in out["reason"]
    assert confirm(fake_server(2000.0), 1000.0, 0.05, 3)["tries"][0]["target_qps"] == 1000.0
    assert step_targets(1000.0, 0.3, 4) == pytest.approx([1000.0, 700.0, 400.0, 250.0])  # never under a quarter


def test_an_overloaded_confirmation_skips_one_rung_and_one_at_the_edge_does_not():
    def server(capacity_qps, p99_over):
        def run_at(q):
            ok = q <= capacity_qps
            return {"target_qps": q, "qps": q, "valid": ok, "p99_ms": 5.0 if ok else p99_over,
                    "reason": "VALID" if ok else "Performance constraints satisfied : NO"}
        return run_at
    overloaded = confirm(server(820.0, 120.0), 1000.0, 0.05, 5, sla_p99_ms=15.0)  # queue grew: 95% is skipped
    # once only: 900 was overloaded too, but 800 is tried (before, it was skipped and 600 confirmed, 27% low)
    assert [r["target_qps"] for r in overloaded["tries"]] == pytest.approx([1000.0, 900.0, 800.0])
    assert overloaded["run"]["valid"] and "2 step(s) down" in overloaded["reason"]
    assert overloaded["skipped"] == pytest.approx([950.0]) and "not tried after an overloaded run" in \
        overloaded["reason"]
    edge = confirm(server(820.0, 16.0), 1000.0, 0.05, 5, sla_p99_ms=15.0)  # just over: every rung is tried
    assert [r["target_qps"] for r in edge["tries"]] == pytest.approx([1000.0, 950.0, 900.0, 800.0])
    last = confirm(server(100.0, 120.0), 1000.0, 0.05, 5, sla_p99_ms=15.0)  # the ladder's 5 rungs, one skipped
    assert [r["target_qps"] for r in last["tries"]] == pytest.approx([1000.0, 900.0, 800.0, 600.0])
    assert last["run"] is None and last["reason"].startswith("not confirmed: 4 longer run(s)")

def test_confirmation_gives_up_after_its_steps():
    out = confirm(fake_server(500.0), 1000.0, tolerance=0.1, steps=3)
    assert out["run"] is None and len(out["tries"]) == 3
    assert out["reason"].startswith("not confirmed: 3 longer run(s) from 1,000 down to 800 QPS")


def test_the_grid_puts_the_profiles_configuration_first_and_ties_keep_it():
    assert batcher_grid([], [], (32, 2.0)) == [(32, 2.0)]
    assert batcher_grid([8, 32], [1.0, 2.0], (32, 2.0)) == [(32, 2.0), (8, 1.0), (8, 2.0), (32, 1.0)]
    sweep = [{"max_batch": 32, "max_queue_delay_ms": 2.0, "search": search(1000)},
             {"max_batch": 8, "max_queue_delay_ms": 1.0, "search": search(1000)},
             {"max_batch": 8, "max_queue_delay_ms": 2.0, "search": search(None)}]
    assert choose_batcher(sweep) is sweep[0]


def test_a_search_stops_at_once_when_one_inference_exceeds_the_sla(tmp_path):
    """A small transformer on CPU at ~34 ms against a 15 ms bound used to halve its target down to 0.5 QPS for
    16 minutes; now no LoadGen run is started and the reason names the bound and the latency."""
    from scaleproof.config import Params
    from scaleproof.stages.benchmark import server_search

    class Slow:
        name = "slow"

    out = server_search(Slow(), {}, None, 10.0, Params(sla_p99_ms=15.0), tmp_path, tmp_path, "dynamic", 34.2)
    assert out["peak_qps"] is None and out["runs"] == []
    assert "34.200 ms (P50), more than the P99 bound sla_p99_ms=15 ms" in out["reason"]


def test_an_open_bracket_widens_the_range_and_repeats_start_on_interleaved_grids():
    from scaleproof.bench.capacity import repeat_start, upper_bound

    grid = {"peak_qps": 19_430.0, "runs": [{"target_qps": 19_430.0, "valid": True},
                                           {"target_qps": 24_288.0, "valid": False}]}
    assert upper_bound([grid, grid], 19_441.0) == 24_288.0  # identical repeats are no evidence of a tight peak
    cap, _ = capacity({"dynamic": grid, "dynamic_repeats": [grid], "confirmation": confirmed(19_430.0, 19_441.0)}, 10)
    assert (cap["qps"], cap["qps_upper"]) == (19_441.0, 24_288.0)
    assert [repeat_start(1000.0, k, 3) for k in range(3)] == pytest.approx([1000.0, 1259.92, 1587.40], rel=1e-4)


def test_a_progress_line_names_loadgens_unmet_checks_in_a_few_words():
    from scaleproof.bench.loadgen import short_reason

    reason = "Performance constraints satisfied : NO; Early stopping satisfied: NO; Reduce target QPS to improve latency."
    assert short_reason(reason) == "failed: latency bound, early stopping"
    assert short_reason("Min duration satisfied : NO") == "failed: min duration"
    assert short_reason("LoadGen reported INVALID") == "LoadGen reported INVALID"
