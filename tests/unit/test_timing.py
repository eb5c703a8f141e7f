import numpy as np
import pytest

from scaleproof.bench.timing import block_cov, summarize


def test_steady_latencies_are_valid_with_percentiles():
    lat = np.full(100, 0.002)
    t = summarize(lat, batch=4, min_repeats=50, min_time_s=0.1, max_cov=0.1)
    assert t.valid and t.p99_ms == pytest.approx(2.0) and t.throughput == pytest.approx(4 * 100 / 0.2)
    assert t.cov == pytest.approx(0, abs=1e-12)


def test_too_few_or_too_short_is_invalid_with_the_reason():
    t = summarize(np.full(10, 0.001), batch=1, min_repeats=50, min_time_s=1.0, max_cov=0.1)
    assert not t.valid and "10 timed iterations < min_repeats 50" in t.reason and "min_time_s" in t.reason


def test_a_drifting_machine_is_invalid_but_a_lone_outlier_is_not():
    drifting = np.concatenate([np.full(50, 0.001), np.full(50, 0.003)])
    assert not summarize(drifting, 1, 10, 0.01, 0.2).valid
    outlier = np.full(100, 0.001)
    outlier[40] = 0.01
    t = summarize(outlier, 1, 10, 0.01, 0.2)
    assert t.valid and t.latency_cov > 0.5 and block_cov(outlier) < 0.2


def test_one_repeat_is_invalid_with_a_reason_not_a_crash():
    """`min_repeats: 1` with a tiny min_time_s: one iteration cannot show a spread; the result says so."""
    from scaleproof.bench.timing import summarize

    t = summarize(np.array([0.002]), 8, min_repeats=1, min_time_s=0.001, max_cov=0.2)
    assert not t.valid and t.reason == ("1 timed iterations are too few to judge stability (at least 10; raise "
                                        "min_repeats or min_time_s)")
    assert t.throughput == 8 / 0.002 and t.p50_ms == 2.0
