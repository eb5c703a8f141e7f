"""The anomaly rules as a published run shows them: every rule in the cost report and explained in the report."""

import pytest

from scaleproof import anomalies


@pytest.mark.slow
def test_flags_reach_the_cost_report_and_every_rule_is_explained(published):
    from scaleproof import stages

    cost = stages.read_result(published, "06_cost_report")
    assert set(cost["anomaly_rules"]) == set(anomalies.RULES)
    assert all(isinstance(e["flags"], list) for e in cost["engines"])
    assert "Anomaly checks before pricing" in (published / "report.html").read_text()
