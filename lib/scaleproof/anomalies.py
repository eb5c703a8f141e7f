"""Checks a measured engine must face before it is priced: each rule, in plain words, and whether the
engine broke it. A flagged engine is priced only with its flags printed next to its figures (the report
puts them in bold), so a broken measurement cannot become a cost figure unnoticed.

Rules (from the measurements in benchmark.json; no new runs):
- server_below_offline: the Server peak is under half the same engine's Offline throughput: the batcher
  or the harness, not the engine, may be what limits it;
- unstable_timings: a timed batch size was INVALID or its spread (CoV) above max_cov;
- peak_at_floor: the highest VALID target is the lowest rate the search tried, with an INVALID run at
  twice it or more above: the peak is known only to a factor of two or worse;
- repeats_disagree: repeated peak searches differ by more than 20%;
- search_open: a search ran out of runs before its VALID/INVALID bracket closed to peak_tolerance: the peak is
  known only to the bracket (a grid point, not a measured limit).
"""

from __future__ import annotations

from typing import Any

from .bench.capacity import lowest_invalid_above

SERVER_TO_OFFLINE = 0.5
REPEAT_SPREAD = 0.2
RULES = {
    "server_below_offline": f"Server peak under {SERVER_TO_OFFLINE:.0%} of the engine's Offline throughput",
    "unstable_timings": "a timed batch size INVALID or above the spread limit (max_cov)",
    "peak_at_floor": "the peak is the lowest rate its search tried, with INVALID runs at 2x or more",
    "repeats_disagree": f"repeated peak searches more than {REPEAT_SPREAD:.0%} apart",
    "search_open": "a peak search ran out of runs before its VALID/INVALID bracket closed to peak_tolerance",
}


# the rules about the priced capacity itself: a second look can change what is priced or claimed. unstable_timings
# is about the timing harness's batch table, which no price is taken from: printed with the figures, not re-measured
CAPACITY_RULES = ("server_below_offline", "peak_at_floor", "repeats_disagree", "search_open")


def second_look_for(flags: list[dict[str, str]], row: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """The flags a second measurement could clear from the priced capacity. A Server figure under half Offline is
    one only where `row`'s own searches found more: where every search peak is under half Offline too, the searches
    agree with the confirmation, and a second look would measure the same gap again (a 2-core CPU serving a small
    model, whose LoadGen thread takes a core from it, 2026-12-08)."""
    out = [f for f in flags if f["rule"] in CAPACITY_RULES]
    if row is not None and searches_under_offline(row):
        out = [f for f in out if f["rule"] != "server_below_offline"]
    return out


def searches_under_offline(row: dict[str, Any]) -> bool:
    """Whether every peak search of `row` found under SERVER_TO_OFFLINE of its Offline throughput."""
    offline, peaks = row.get("offline") or {}, [s.get("peak_qps") for s in searches_of(row)]
    return bool(offline.get("valid") and offline.get("qps") and peaks and all(
        p is not None and p < SERVER_TO_OFFLINE * offline["qps"] for p in peaks))


def searches_of(row: dict[str, Any]) -> list[dict[str, Any]]:
    server = row.get("server") or {}
    return [s for s in (server.get("dynamic"), *server.get("dynamic_repeats", [])) if s]


def check(row: dict[str, Any], tolerance: float = 0.05) -> list[dict[str, str]]:
    """The rules one benchmark.json engine row breaks, each with what was measured."""
    flags = []
    cap, offline = row.get("capacity"), row.get("offline") or {}
    if cap and offline.get("valid") and offline.get("qps") and cap["qps"] < SERVER_TO_OFFLINE * offline["qps"]:
        flags.append({"rule": "server_below_offline",
                      "detail": f"Server peak {cap['qps']:,.0f} QPS vs Offline {offline['qps']:,.0f} samples/s"})
    bad = [t for t in row.get("timings", []) if not t["valid"]]
    if bad:
        flags.append({"rule": "unstable_timings",
                      "detail": "; ".join(f"batch {t['batch']}: {t['reason']}" for t in bad)})
    search = (row.get("server") or {}).get("dynamic") or {}
    runs = search.get("runs") or []
    if search.get("peak_qps") is not None and runs:
        lowest = min(r["target_qps"] for r in runs)
        above = [r["target_qps"] for r in runs if not r["valid"] and r["target_qps"] > search["peak_qps"]]
        if search["peak_qps"] <= lowest and above and min(above) >= 2 * search["peak_qps"]:
            flags.append({"rule": "peak_at_floor", "detail": f"peak {search['peak_qps']:,.0f} QPS, next tried rate "
                                                             f"{min(above):,.0f} QPS was INVALID"})
    open_brackets = [f"{s['peak_qps']:,.0f}–{hi:,.0f} QPS" for s in searches_of(row)
                     if s.get("peak_qps") and (hi := lowest_invalid_above(s)) and (hi - s["peak_qps"]) / s["peak_qps"]
                     > tolerance + 1e-9]
    open_brackets += [f"{s['peak_qps']:,.0f} QPS with no INVALID rate above it" for s in searches_of(row)
                      if s.get("peak_qps") and lowest_invalid_above(s) is None]
    if open_brackets:
        flags.append({"rule": "search_open", "detail": f"not closed to {tolerance:.0%}: " + ", ".join(open_brackets)})
    peaks = (cap or {}).get("peaks") or []
    if len(peaks) >= 2 and (max(peaks) - min(peaks)) / min(peaks) > REPEAT_SPREAD:
        flags.append({"rule": "repeats_disagree",
                      "detail": "peaks " + ", ".join(f"{p:,.0f}" for p in peaks) + " QPS"})
    return flags
