"""The fleet report's warnings: shared hosts, devices unlike their label, different code, and no winner
named when the cheapest type's cost range overlaps another's."""

from scaleproof.fleet_report import member_warnings, within_spread


def member(t, host, device, commit="abc"):
    return {"gpu_type": t, "status": "succeeded", "hostname": host, "device_slug": device, "code": {"commit": commit}}


def test_members_on_one_host_a_mislabelled_device_and_different_code_are_warned():
    warnings = member_warnings([member("T4", "node-1", "t4"), member("L4", "node-1", "l4", commit="def"),
                                member("H100", "node-2", "a100-sxm4-80gb")])
    assert any("T4, L4 ran on the same host `node-1`" in w for w in warnings)
    assert any(w.startswith("H100: the measured device is `a100-sxm4-80gb`") for w in warnings)
    assert any(w.startswith("members ran different code") and "L4 at def" in w for w in warnings)
    assert member_warnings([member("T4", "a", "tesla-t4"), member("H100", "b", "h100-80gb-hbm3")]) == []
    assert any(w.startswith("CPU-A: the measured device") for w in member_warnings([member("CPU-A", "a", "cpu-amd-epyc")]))


def row(t, usd, lo, hi):
    return {"gpu_type": t, "annual_usd": usd, "annual_usd_range": [lo, hi]}


def test_no_cheapest_type_is_named_when_the_ranges_overlap():
    rows = [row("T4", 1000, 900, 1100), row("L4", 1050, 1000, 1300)]
    assert "no cheapest type named: T4 (900–1,100 USD a year) and L4 (1,000–1,300)" in within_spread(rows, rows[0])
    apart = [row("T4", 1000, 900, 1100), row("L4", 2000, 1800, 2300)]
    assert within_spread(apart, apart[0]) is None

