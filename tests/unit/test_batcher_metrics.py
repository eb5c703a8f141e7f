"""The in-process batcher's counters exported with prometheus_client under Triton's names: what the batcher ran,
scraped over HTTP, per batch size; nothing exported once the exporter is stopped."""

import threading

from scaleproof.bench.batcher import DynamicBatcher
from scaleproof.bench.batcher_metrics import BatcherExporter
from scaleproof.served import free_port
from scaleproof.serving_metrics import BATCH_SERIES, read_metrics
from tests.unit.test_batcher import Collector, EchoEngine, loaded


def run_batches(engine, requests: int) -> DynamicBatcher:
    done = Collector()
    batcher = DynamicBatcher(loaded(engine), 8, 0.002, done).start()

    def produce(offset):
        for i in range(requests // 2):
            batcher.submit([(offset + i, (offset + i) % 1000)])

    threads = [threading.Thread(target=produce, args=(k * 10_000,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.stop()
    assert len(done.got) == requests
    return batcher


def test_the_exporter_serves_what_the_batcher_ran_under_tritons_names():
    port = free_port()
    engine = EchoEngine(max_batch=8, delay_s=0.0005)
    with BatcherExporter({"digits-echo": {"version": "3", "precision": "fp32", "run_id": "r1"}},
                         models={"echo": "digits-echo"}).start(port):
        batcher = run_batches(engine, 400)
        samples = read_metrics(f"127.0.0.1:{port}")
    by_name = {}
    for s in samples:
        by_name.setdefault(s["name"], []).append(s)
    [count] = by_name["nv_inference_count"]
    [execs] = by_name["nv_inference_exec_count"]
    assert count["labels"] == {"model": "digits-echo", "version": "3"} and count["value"] == 400
    assert execs["value"] == sum(batcher.batch_sizes.values()) < 400  # it batched
    per_size = {int(s["labels"]["batch_size"]): s["value"] for s in by_name[BATCH_SERIES]}
    assert per_size == {b: float(n) for b, n in batcher.batch_sizes.items()}
    assert max(per_size) <= 8
    [queue] = by_name["nv_inference_queue_duration_us"]
    [compute] = by_name["nv_inference_compute_infer_duration_us"]
    assert queue["value"] > 0 and compute["value"] >= 0.0005 * 1e6 * execs["value"] * 0.9  # the engine's sleep
    [info] = by_name["scaleproof_model_info"]
    assert info["labels"] == {"model": "digits-echo", "version": "3", "precision": "fp32", "run_id": "r1"}
    # the same figures the LoadGen run records beside its batch sizes
    extra = batcher.run_extra()
    assert abs(extra["queue_ms_mean"] - queue["value"] / 1e3 / 400) < 1e-6
    assert extra["compute_ms_per_batch"] >= 0.5 * 0.9


def test_a_stopped_exporter_takes_no_more_batches():
    exporter = BatcherExporter().start(free_port())
    exporter.stop()
    run_batches(EchoEngine(max_batch=8), 100)
    assert exporter not in DynamicBatcher.observers
    assert not any(s.samples for s in exporter.collect())
