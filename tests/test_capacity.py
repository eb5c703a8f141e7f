from scaleproof.bench.stage import capacity


def search(peak, invalid_above=None):
    runs = [{"target_qps": peak, "valid": True, "p99_ms": 5.0, "log_dir": f"l{peak}", "batching": "dynamic"}]
    if invalid_above:
        runs.append({"target_qps": invalid_above, "valid": False})
    return {"peak_qps": peak, "peak_run": runs[0] if peak else None, "runs": runs}


def test_one_search_gives_its_bracket_as_the_range():
    cap = capacity({"dynamic": search(1000, 1100)})
    assert (cap["qps"], cap["qps_upper"]) == (1000, 1100)
    assert "highest VALID and lowest INVALID" in cap["range_source"]


def test_repeated_searches_give_the_lowest_peak_and_the_run_to_run_spread():
    cap = capacity({"dynamic": search(1000, 1100), "dynamic_repeats": [search(900, 990), search(1050, 1200)]})
    assert cap["qps"] == 900 and cap["qps_upper"] == 1050 and cap["peaks"] == [1000, 900, 1050]
    assert cap["log_dir"] == "l900" and "run-to-run spread of 3" in cap["range_source"]


def test_no_valid_peak_in_any_search_means_no_capacity():
    assert capacity({"dynamic": search(None)}) is None
    assert capacity({"dynamic": search(1000), "dynamic_repeats": [search(None)]}) is None


def test_a_search_stops_at_once_when_one_inference_exceeds_the_sla(tmp_path):
    """A small transformer on CPU at ~34 ms against a 15 ms bound used to halve its target down to 0.5 QPS for
    16 minutes; now no LoadGen run is started and the reason names the bound and the latency."""
    from scaleproof.bench.stage import server_search
    from scaleproof.config import Params

    class Slow:
        name = "slow"

    out = server_search(Slow(), {}, None, 10.0, Params(sla_p99_ms=15.0), tmp_path, tmp_path, "dynamic", 34.2)
    assert out["peak_qps"] is None and out["runs"] == []
    assert "34.200 ms (P50), more than the P99 bound sla_p99_ms=15 ms" in out["reason"]
