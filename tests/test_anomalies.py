"""A broken measurement cannot be priced unnoticed: each anomaly rule flags a planted case, and a clean
engine is not flagged."""

import pytest

from scaleproof import anomalies


def row(**kw):
    base = {"capacity": {"qps": 900.0, "peaks": [900.0, 950.0]}, "offline": {"valid": True, "qps": 1000.0},
            "timings": [{"batch": 1, "valid": True, "reason": "valid"}],
            "server": {"dynamic": {"peak_qps": 900.0, "runs": [
                {"target_qps": 500.0, "valid": True}, {"target_qps": 1000.0, "valid": False},
                {"target_qps": 750.0, "valid": True}, {"target_qps": 900.0, "valid": True}]}}}
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
    assert rules(floor) == ["peak_at_floor"]
    assert rules(row(capacity={"qps": 900.0, "peaks": [900.0, 1200.0]})) == ["repeats_disagree"]


@pytest.mark.slow
def test_flags_reach_the_cost_report_and_every_rule_is_explained(published):
    from scaleproof import stages

    cost = stages.read_result(published, "06_cost_report")
    assert set(cost["anomaly_rules"]) == set(anomalies.RULES)
    assert all(isinstance(e["flags"], list) for e in cost["engines"])
    assert "Anomaly checks before pricing" in (published / "report.html").read_text()
