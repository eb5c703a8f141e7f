"""Per-device scaling: one worker process per device, one LoadGen run over all of them, with CPU workers
standing in for GPUs (engines whose service time is spent asleep, as a GPU's is to the host)."""

import time

import numpy as np
import pytest

from scaleproof.bench.loadgen import LoadgenSettings
from scaleproof.bench.multi_gpu import WorkerPool, devices_for, measure_scaling
from tests.stand_in_engines import broken_engine, failing_engine, no_launch_engine, sleep_engine

SAMPLES = {"input": np.zeros((64, 1, 4, 4), np.float32)}
CFG = LoadgenSettings(min_duration_s=0.5, min_queries=200, sla_p99_ms=50.0, max_batch=8, max_delay_ms=2.0)


def test_devices_are_gpus_where_there_are_any_else_cpu_workers():
    assert devices_for(-1, gpus=8, cores=64) == [f"cuda:{i}" for i in range(8)]
    assert devices_for(1, gpus=1, cores=16) == ["cuda:0"]
    assert devices_for(2, gpus=0, cores=2) == ["cpu:0", "cpu:1"]
    with pytest.raises(ValueError, match="asked for 4 devices but this machine has 2 GPUs"):
        devices_for(4, gpus=2, cores=32)


def test_two_workers_serve_about_twice_one_under_the_same_p99_bound(tmp_path):
    out = measure_scaling(sleep_engine, SAMPLES, ["cpu:0", "cpu:1"], CFG, start_qps=800, max_runs=5, tolerance=0.15,
                          log_dir=tmp_path, confirm_s=1.0, confirm_steps=4)
    one, two = out["peak_qps"]["1"], out["peak_qps"]["2"]
    assert one and two and two > 1.4 * one, out["peak_qps"]
    assert 0.7 < out["scaling_factor"] <= 1.3 and out["scaling_factor"] == pytest.approx(two / (2 * one))
    lo, hi = out["factor_range"]
    assert lo <= out["scaling_factor"] <= hi and out["confirmed"]
    for n, measured in out["searches"].items():  # every run a real LoadGen Server run, logs kept
        conf = measured["confirmation"]["run"]  # the capacity is what the long confirmation run achieved
        assert conf["valid"] and conf["min_duration_s"] >= 2.5 and conf["qps"] == out["peak_qps"][n]
        for search in measured["searches"]:
            assert search["runs"] and all(r["scenario"] == "server" for r in search["runs"])
    assert any(p.name.startswith("2-devices-confirm-") for p in tmp_path.iterdir())


def test_a_worker_that_cannot_load_its_engine_stops_the_pool_with_its_error():
    with pytest.raises(RuntimeError, match="worker cpu:1 failed to start: RuntimeError: this engine cannot load"):
        WorkerPool(broken_engine, SAMPLES, ["cpu:1"], 8, 0.002)


def started_test(pool, samples, requests):
    """A LoadGen-like test on the pool: its SUT started, `requests` submitted, and the ids answered so far
    (waiting up to 10 s for all of them)."""
    from scaleproof.bench.sut import SampleLibrary, SutConfig

    done = []
    sut = pool.sut(SampleLibrary(samples), SutConfig(8, 0.002), lambda ids, rows: done.extend(ids)).start()
    sut.submit(requests)
    deadline = time.time() + 10
    while len(done) < len(requests) and time.time() < deadline:
        time.sleep(0.01)
    return sut, done


def test_an_engine_that_fails_mid_test_fails_the_test_instead_of_leaving_loadgen_waiting():
    """Every request is answered (the failed ones without data), and stopping the test raises the worker's error."""
    numbered = {"input": np.broadcast_to(np.arange(64, dtype=np.float32)[:, None, None, None], (64, 1, 4, 4)).copy()}
    pool = WorkerPool(failing_engine, numbered, ["cpu:0"], 8, 0.002)
    try:
        sut, done = started_test(pool, numbered, [(1, 0), (2, 13), (3, 5)])
        assert sorted(done) == [1, 2, 3]
        with pytest.raises(RuntimeError, match="worker cpu:0: RuntimeError: device lost at sample 13"):
            sut.stop()
        assert sorted(done) == [1, 2, 3]  # and none twice (the reader has stopped)
    finally:
        pool.close()


def test_the_pools_workers_batch_synchronously_even_for_an_asynchronous_engine():
    """Two batches in flight per worker held 3,445 QPS on one H100 (2026-11-26): the pool does not use it."""
    pool = WorkerPool(no_launch_engine, SAMPLES, ["cpu:0"], 8, 0.002)
    try:
        sut, done = started_test(pool, SAMPLES, [(1, 0), (2, 1), (3, 2)])
        sut.stop()  # would raise "a batch was launched asynchronously"
        assert sorted(done) == [1, 2, 3]
    finally:
        pool.close()


def test_the_pool_is_one_sut_and_refuses_a_test_with_other_batcher_settings():
    from scaleproof.bench.sut import SampleLibrary, SutConfig

    pool = WorkerPool(sleep_engine, SAMPLES, ["cpu:0"], 8, 0.002)
    try:
        sut, done = started_test(pool, SAMPLES, [(1, 0), (2, 1)])
        sut.stop()
        assert sorted(done) == [1, 2]
        with pytest.raises(ValueError, match="max batch 8 and a 2 ms window"):
            pool.sut(SampleLibrary(SAMPLES), SutConfig(16, 0.002), lambda ids, rows: None)
    finally:
        pool.close()


@pytest.mark.whole_machine  # two CPU workers: refused on fewer than two cores
def test_benchmark_stage_measures_scaling_of_its_best_engine_with_cpu_stand_ins(digits_run):
    from scaleproof import stages
    from scaleproof.datasets import digits_splits
    from scaleproof.stages import benchmark as stage

    params = digits_run.with_(scaling_devices=2, loadgen_min_duration_s=0.2, loadgen_min_queries=100,
                              peak_search_runs=2, batcher_max_batch=8, peak_repeats=1, min_priced_duration_s=0.5)
    built = stages.read_result(params.run_path, "03_build")
    batcher = {"server": {"batcher": {"max_batch": 8, "max_queue_delay_ms": 2.0}}}
    rows = [{"engine": "onnxruntime-fp32", "validated": True, "capacity": {"qps": 2000.0}, **batcher},
            {"engine": "torch-fp32", "validated": True, "capacity": {"qps": 500.0}, **batcher}]
    out = stage.scaling(params, built, rows, digits_splits()["val"].x)
    assert out["engine"] == "onnxruntime-fp32" and out["devices"] == ["cpu:0", "cpu:1"]
    assert out["device_kind"].startswith("cpu") and set(out["peak_qps"]) == {"1", "2"}
    assert stage.scaling(params.with_(scaling_devices=0), built, rows, None) is None
