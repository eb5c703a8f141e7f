"""A broken measurement cannot be priced unnoticed: each anomaly rule flags a planted case, and a clean
engine is not flagged."""


from scaleproof import anomalies


def row(**kw):
    base = {"capacity": {"qps": 900.0, "peaks": [900.0, 950.0]}, "offline": {"valid": True, "qps": 1000.0},
            "timings": [{"batch": 1, "valid": True, "reason": "valid"}],
            "server": {"dynamic": {"peak_qps": 900.0, "runs": [
                {"target_qps": 500.0, "valid": True}, {"target_qps": 1000.0, "valid": False},
                {"target_qps": 750.0, "valid": True}, {"target_qps": 900.0, "valid": True},
                {"target_qps": 940.0, "valid": False}]}}}
    base.update(kw)
    return base


def rules(r):
    return [f["rule"] for f in anomalies.check(r)]


def test_a_clean_engine_is_not_flagged():
    assert rules(row()) == []


def test_a_planted_slow_server_is_flagged():
    """Offline 27,829 samples/s but Server 870 QPS: what a default CPU run once priced without a word."""
    flags = anomalies.check(row(capacity={"qps": 870.0}, offline={"valid": True, "qps": 27_829.0}))
    assert [f["rule"] for f in flags] == ["server_below_offline"]
    assert flags[0]["detail"] == "Server peak 870 QPS vs Offline 27,829 samples/s"


def test_unstable_timings_peak_at_floor_and_disagreeing_repeats_are_flagged():
    unstable = row(timings=[{"batch": 8, "valid": False, "reason": "latency spread (CoV) 0.4 > max_cov 0.2"}])
    assert rules(unstable) == ["unstable_timings"]
    floor = row(server={"dynamic": {"peak_qps": 500.0, "runs": [{"target_qps": 1000.0, "valid": False},
                                                                {"target_qps": 500.0, "valid": True}]}},
                capacity={"qps": 500.0}, offline={"valid": True, "qps": 900.0})
    assert rules(floor) == ["peak_at_floor", "search_open"]
    assert rules(row(capacity={"qps": 900.0, "peaks": [900.0, 1200.0]})) == ["repeats_disagree"]


def test_a_flagged_engine_is_measured_once_more_and_the_first_flags_are_kept():
    from scaleproof.stages.benchmark import with_second_look

    flagged = {"flags": [{"rule": "server_below_offline", "detail": "d"}], "capacity": {"qps": 870.0}}
    clean = {"flags": [], "capacity": {"qps": 20_000.0}}
    results = iter([flagged, clean])
    row = with_second_look(lambda: dict(next(results)), True, "e")
    assert row["capacity"]["qps"] == 20_000.0 and row["remeasured"] == {
        "first_flags": flagged["flags"], "first_capacity": {"qps": 870.0}, "still_flagged": False,
        "what": "the whole engine: searches, Offline and confirmation"}
    calls = []
    still = with_second_look(lambda: calls.append(1) or dict(flagged), True, "e")
    assert len(calls) == 2 and still["remeasured"]["still_flagged"]  # once more, never a third time
    calls.clear()
    assert "remeasured" not in with_second_look(lambda: calls.append(1) or dict(flagged), False, "e") and len(calls) == 1
    calls.clear()
    assert "remeasured" not in with_second_look(lambda: calls.append(1) or dict(clean), True, "e") and len(calls) == 1
    # a flag on the timing harness's batch table cannot change the priced capacity: no second look for it
    calls.clear()
    timings = {"flags": [{"rule": "unstable_timings", "detail": "batch 8: CoV 0.4"}], "capacity": {"qps": 870.0}}
    kept = with_second_look(lambda: calls.append(1) or dict(timings), True, "e")
    assert "remeasured" not in kept and kept["flags"] == timings["flags"] and len(calls) == 1


def test_a_search_that_stopped_before_its_bracket_closed_is_flagged():
    """Two H100s once gave a scaling factor of exactly 1.00: both peaks sat on the doubling grid, 25% below the
    next (INVALID) rate."""
    server = {"dynamic": {"peak_qps": 19_430.0, "runs": [{"target_qps": 9_715.0, "valid": True},
                                                         {"target_qps": 19_430.0, "valid": True},
                                                         {"target_qps": 24_288.0, "valid": False}]}}
    flags = anomalies.check(row(server=server, capacity={"qps": 19_441.0}, offline={"valid": True, "qps": 20_715.0}))
    assert [f["rule"] for f in flags] == ["search_open"]
    assert flags[0]["detail"] == "not closed to 5%: 19,430–24,288 QPS"
    assert anomalies.check(row(server=server, capacity={"qps": 19_441.0}), tolerance=0.3) == []


def test_a_server_gap_its_own_searches_found_too_gets_no_second_look():
    """A Server figure under half Offline that every search found too is how the engine serves on this machine,
    not a bad confirmation: it is priced with its flag and not measured again. Where a search found more than half
    Offline, the confirmation is what disagrees, and it is measured again."""
    from scaleproof.stages.benchmark import with_second_look

    searches = {"dynamic": {"peak_qps": 48_463.0, "runs": []}, "dynamic_repeats": [{"peak_qps": 49_950.0, "runs": []}]}
    flagged = {"flags": [{"rule": "server_below_offline", "detail": "d"}], "capacity": {"qps": 48_411.0},
               "offline": {"valid": True, "qps": 100_052.0}, "server": searches}
    calls = []
    kept = with_second_look(lambda: calls.append(1) or dict(flagged), True, "e")
    assert len(calls) == 1 and "remeasured" not in kept and kept["second_look"].startswith("every peak search found")
    assert anomalies.second_look_for(flagged["flags"]) and not anomalies.second_look_for(flagged["flags"], flagged)
    # one search found more than half Offline: the confirmation disagrees with it, so a second look is taken
    above = dict(flagged, server={**searches, "dynamic_repeats": [{"peak_qps": 61_000.0, "runs": []}]})
    calls.clear()
    again = with_second_look(lambda: calls.append(1) or dict(above), True, "e")
    assert len(calls) == 2 and again["remeasured"]["still_flagged"]
    # other capacity flags still get their second look, whatever the searches found
    disagree = dict(flagged, flags=[*flagged["flags"], {"rule": "repeats_disagree", "detail": "d"}])
    assert [f["rule"] for f in anomalies.second_look_for(disagree["flags"], disagree)] == ["repeats_disagree"]
