"""Which engines get the priced confirmation run (confirm: leaders | all), where its ladder starts, and the peak
search that never goes below a rate whose latency bound held."""

import pytest

from scaleproof.bench.capacity import confirm_plan, ladder_start, search_span
from scaleproof.bench.loadgen import find_peak
from scaleproof.config import Params
from scaleproof.stages.benchmark import settle


def search(peak: float, invalid_above: float | None, *more_runs: tuple[float, bool]) -> dict:
    runs = [{"target_qps": peak, "valid": True}, *({"target_qps": q, "valid": v} for q, v in more_runs)]
    if invalid_above is not None:
        runs.append({"target_qps": invalid_above, "valid": False})
    return {"peak_qps": peak, "peak_run": runs[0], "runs": runs, "reason": "test"}


def row(engine: str, peaks: list[float], baseline: bool = False, validated: bool = True) -> dict:
    """A searched, not yet confirmed engine row; each search's bracket closed 4% above its peak."""
    searches = [search(p, p * 1.04) for p in peaks]
    return {"engine": engine, "baseline": baseline, "validated": validated, "timings": [], "offline": {},
            "server": {"batcher": {"max_batch": 8, "max_queue_delay_ms": 2.0}, "sweep": [],
                       "dynamic": searches[0], "dynamic_repeats": searches[1:], "confirmation": None}}


ENGINES = [row("torch-fp32", [300, 320], baseline=True), row("onnxruntime-int8", [1000, 1060]),
           row("onnxruntime-fp32", [930, 1010]), row("planted-behind", [500, 560])]


def test_an_engine_clearly_behind_the_leader_is_labelled_and_the_rest_confirmed():
    plan = confirm_plan(ENGINES, tolerance=0.05, scope="leaders")
    assert plan["torch-fp32"] is None  # the baseline always: every ratio is against it
    assert plan["onnxruntime-int8"] is None  # the leader: the highest lowest peak
    assert plan["onnxruntime-fp32"] is None  # its range (top 1,010) reaches the leader's lowest peak
    label = plan["planted-behind"]
    # top of its range: its highest peak 560 (an INVALID 520 closed the other search) against the leader's
    # lowest 1,000: 44% behind
    assert label.startswith("not confirmed: behind onnxruntime-int8 by 44%"), label
    assert "560" in label and "1,000" in label


def test_confirm_all_confirms_every_engine_with_a_peak():
    assert set(confirm_plan(ENGINES, 0.05, "all").values()) == {None}


def test_within_the_tolerance_of_the_leader_is_not_behind():
    # b's top: its lowest INVALID 977.6 above its highest peak 950, 2.2% under a's lowest peak
    rows = [row("a", [1000, 1000]), row("b", [940, 950])]
    assert confirm_plan(rows, 0.05, "leaders") == {"a": None, "b": None}
    assert confirm_plan(rows, 0.02, "leaders")["b"].startswith("not confirmed: behind a by 2%")


def test_a_search_open_upwards_is_never_behind():
    rows = [row("a", [1000, 1000]), row("b", [500, 500])]
    rows[1]["server"]["dynamic"]["runs"] = [{"target_qps": 500, "valid": True}]  # no INVALID rate above its peak
    assert search_span(rows[1]["server"])[1] == float("inf")
    assert confirm_plan(rows, 0.05, "leaders")["b"] is None


def test_an_engine_not_validated_cannot_lead():
    rows = [row("base", [300, 300], baseline=True), row("fast-but-wrong", [5000, 5000], validated=False),
            row("b", [1000, 1000]), row("c", [400, 400])]
    plan = confirm_plan(rows, 0.05, "leaders")
    assert plan["b"] is None and plan["base"] is None
    assert plan["c"].startswith("not confirmed: behind b by 58%")  # b leads, not the engine that failed validation


def confirmation(qps: float, valid: bool = True) -> dict:
    run = {"valid": valid, "qps": qps, "target_qps": qps, "p99_ms": 5.0, "log_dir": "x", "min_duration_s": 10.0,
           "batching": "dynamic: max batch 8, max queue delay 2 ms", "queries": 10_000,
           "reason": "VALID" if valid else "Performance constraints satisfied : NO"}
    return {"run": run if valid else None, "tries": [run], "skipped": [],
            "reason": f"VALID at {qps:,.0f} QPS target" if valid else "not confirmed: INVALID"}


def settled(scope: str, refuse: set[str] = frozenset()) -> tuple[dict[str, dict], list[str]]:
    """`settle` over copies of ENGINES, the baseline confirmed in its first process; which engines it confirms."""
    import copy

    rows = copy.deepcopy(ENGINES)
    rows[0]["server"]["confirmation"] = confirmation(290)
    asked = []

    def confirm_row(r):
        asked.append(r["engine"])
        return confirmation(0.9 * r["server"]["dynamic"]["peak_qps"], valid=r["engine"] not in refuse)

    params = Params(confirm=scope, peak_tolerance=0.05, remeasure_flagged=False)
    settle(rows, confirm_row, lambda r: pytest.fail("no engine is flagged"), params, floor_s=10.0)
    return {r["engine"]: r for r in rows}, asked


def test_settle_confirms_the_leaders_and_labels_the_engine_behind():
    rows, asked = settled("leaders")
    assert sorted(asked) == ["onnxruntime-fp32", "onnxruntime-int8"]  # the baseline was confirmed already
    behind = rows["planted-behind"]
    assert behind["capacity"] is None and behind["server"]["confirmation"] is None
    assert behind["not_confirmed"].startswith("not confirmed: behind onnxruntime-int8 by 44%")
    assert behind["capacity_reason"] == behind["not_confirmed"]
    assert behind["server"]["dynamic"]["peak_qps"] == 500  # its search figures kept
    assert rows["onnxruntime-int8"]["capacity"]["qps"] == 900 and rows["torch-fp32"]["capacity"]["qps"] == 290


def test_settle_with_confirm_all_confirms_every_engine():
    rows, asked = settled("all")
    assert sorted(asked) == ["onnxruntime-fp32", "onnxruntime-int8", "planted-behind"]
    assert all(r["capacity"] for r in rows.values()) and not any(r.get("not_confirmed") for r in rows.values())


def test_a_leader_refused_by_its_confirmation_brings_the_next_engines_in():
    rows, asked = settled("leaders", refuse={"onnxruntime-int8", "onnxruntime-fp32"})
    # with both leaders refused, the planted engine leads what can still be priced: it is confirmed after all
    assert asked == ["onnxruntime-int8", "onnxruntime-fp32", "planted-behind"]
    assert rows["planted-behind"]["capacity"]["qps"] == 450 and rows["onnxruntime-int8"]["capacity"] is None


def test_the_ladder_starts_at_the_lowest_peak_of_the_repeats_not_the_highest():
    start, why = ladder_start([search(1000, 1040), search(900, 950), search(1100, 1150)])
    assert start == 900 and "lowest of 3 search peaks" in why


def test_the_ladder_starts_under_a_rate_any_repeat_saw_invalid():
    # repeat 2 found 900, but repeat 1 saw 850 INVALID on its way to 1,000: the evidence holds only up to 800
    searches = [search(1000, 1040, (850, False), (800, True)), search(900, 950, (700, True))]
    start, why = ladder_start(searches)
    assert start == 800 and "850" in why


def test_a_latency_held_run_is_no_evidence_against_a_rate():
    held = {"target_qps": 400, "valid": False, "extra": {"latency_held": True}}
    s = search(1000, 1040)
    s["runs"].append(held)
    assert ladder_start([s, search(900, 950)])[0] == 900


def fake_slow_model(capacity: float, early_stopping_queries: int, budget_s: float):
    """A Server run of a slow model: VALID up to `capacity` where the queries early stopping needs fit the budget;
    under it, latency-held (the bound met, too few queries in the budget); above it, INVALID."""
    def run_at(q):
        if q > capacity:
            return {"target_qps": q, "valid": False, "reason": "Performance constraints satisfied : NO"}
        if early_stopping_queries / q > budget_s:
            return {"target_qps": q, "valid": False, "reason": "Early stopping satisfied: NO",
                    "extra": {"latency_held": True, "early_stopping_needs": early_stopping_queries}}
        return {"target_qps": q, "valid": True, "reason": "VALID"}
    return run_at


def test_the_search_climbs_from_a_latency_held_rate_instead_of_halving():
    # 5 QPS held the bound but early stopping's 460 queries take 92 s there: a 60 s budget fits from 7.7 QPS
    found = find_peak(fake_slow_model(capacity=30.0, early_stopping_queries=460, budget_s=60.0), 5.0, max_runs=8,
                      tolerance=0.05)
    assert found.peak_qps is not None and 0.95 * 30 <= found.peak_qps <= 30, found.reason
    assert min(r["target_qps"] for r in found.runs) == 5.0  # never under the rate that held


def test_a_model_unmeasurable_within_the_budget_is_reported_as_such():
    found = find_peak(fake_slow_model(capacity=6.0, early_stopping_queries=460, budget_s=60.0), 5.0, max_runs=6)
    assert found.peak_qps is None and min(r["target_qps"] for r in found.runs) >= 5.0
    assert "not measurable within the duration budget" in found.reason and "server_duration_budget_s" in found.reason


def test_a_second_look_only_for_a_confirmed_engine_whose_capacity_is_flagged():
    import copy

    from scaleproof.stages.benchmark import judged

    rows = copy.deepcopy(ENGINES)
    rows[0]["server"]["confirmation"] = confirmation(290)
    rows[1]["server"]["dynamic_repeats"] = [search(1300, 1352)]  # the leader's repeats 30% apart: repeats_disagree
    rows[3]["server"]["dynamic_repeats"] = [search(700, 728)]  # the planted engine's too, but it is not confirmed
    looked = []

    def remeasure_row(r):
        looked.append(r["engine"])
        again = copy.deepcopy(r)
        again["server"]["dynamic_repeats"] = [search(1050, 1092)]
        again["server"]["confirmation"] = confirmation(920)
        return judged(again, 10.0, 0.05)

    params = Params(confirm="leaders", peak_tolerance=0.05, remeasure_flagged=True)
    settle(rows, lambda r: confirmation(0.9 * r["server"]["dynamic"]["peak_qps"]), remeasure_row, params, 10.0)
    by = {r["engine"]: r for r in rows}
    assert looked == ["onnxruntime-int8"]
    assert by["onnxruntime-int8"]["capacity"]["qps"] == 920 and by["onnxruntime-int8"]["flags"] == []
    assert [f["rule"] for f in by["onnxruntime-int8"]["remeasured"]["first_flags"]] == ["repeats_disagree"]
    assert by["planted-behind"]["not_confirmed"] and "remeasured" not in by["planted-behind"]


def test_a_confirmation_under_its_own_searches_is_confirmed_again_not_searched_again():
    """A leader confirmed under half its Offline throughput while every search found more: the second look is a
    second confirmation run (its searches stand). Searches that straddle the line, or a flag on the searches,
    measure it all again; every search under the line too takes no second look at all."""
    from scaleproof.stages.benchmark import only_the_confirmation

    def row(*peaks, flags=("server_below_offline",)):
        return {"offline": {"valid": True, "qps": 100_052.0}, "flags": [{"rule": f, "detail": "d"} for f in flags],
                "server": {"dynamic": {"peak_qps": peaks[0], "runs": []},
                           "dynamic_repeats": [{"peak_qps": p, "runs": []} for p in peaks[1:]]}}

    assert only_the_confirmation(row(52_000.0, 57_482.0))  # the ladder's start, 52,000, is above half Offline
    assert not only_the_confirmation(row(48_463.0, 57_482.0))  # straddling: its ladder could not clear the flag
    assert not only_the_confirmation(row(52_000.0, 57_482.0, flags=("server_below_offline", "search_open")))
    assert not only_the_confirmation(row(48_463.0, 49_000.0))  # no second look at all (test_anomalies)


def test_the_machine_hold_is_the_lowest_share_a_confirmation_held_of_its_evidence():
    from scaleproof.bench.capacity import HOLD_FLOOR, machine_hold

    def row(name, target, evidence, start=None):
        return {"engine": name, "server": {"confirmation": {"run": {"target_qps": target}, "evidence_qps": evidence,
                                                            "start_qps": evidence if start is None else start}}}

    assert machine_hold([]) is None and machine_hold([row("a", 1000.0, 1000.0)]) is None  # held its evidence
    refused = {"engine": "r", "server": {"confirmation": {"run": None, "evidence_qps": 900.0}}}
    unconfirmed = {"engine": "u", "server": {"confirmation": None}}
    hold = machine_hold([row("a", 900.0, 1000.0), row("b", 850.0, 1000.0), refused, unconfirmed])
    assert hold["ratio"] == 0.85 and hold["why"].startswith("b's confirmation held 85%")
    floored = machine_hold([row("c", 100.0, 1000.0)])  # never under HOLD_FLOOR of an engine's own evidence
    assert floored["ratio"] == HOLD_FLOOR == 0.8 and "held 10%" in floored["why"] and "80% at the lowest" in floored["why"]
    # a ladder started at a share of its evidence is not counted: the shares would compound run after run
    assert machine_hold([row("d", 810.0, 1000.0, start=900.0)]) is None
