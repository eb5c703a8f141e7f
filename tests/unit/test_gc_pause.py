"""The collector is kept out of measured windows and restored after them, errors included."""

import gc

import pytest

from scaleproof.bench import gc_pause


def test_paused_freezes_live_objects_and_restores_the_collector():
    kept = [object() for _ in range(1000)]  # live before the window: frozen, never scanned inside it
    assert gc.isenabled()
    with gc_pause.paused():
        assert not gc.isenabled()
        assert gc.get_freeze_count() >= len(kept)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_paused_restores_the_collector_when_the_measurement_fails():
    with pytest.raises(RuntimeError), gc_pause.paused():
        raise RuntimeError("engine crashed mid-run")
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_disabled_collector_stays_disabled():
    gc.disable()
    try:
        with gc_pause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_freeze_made_before_the_block_stays():
    gc.freeze()  # as a multi-GPU worker does for its whole life
    frozen = gc.get_freeze_count()
    try:
        with gc_pause.paused():
            pass
        assert gc.get_freeze_count() >= frozen > 0 and gc.isenabled()
    finally:
        gc.unfreeze()
