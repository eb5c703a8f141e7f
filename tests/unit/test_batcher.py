"""The dynamic batcher: every request answered exactly once with its own output, in arrival order,
batches never above max_batch, and no request held longer than the queue window when load is light."""

import threading
import time

import numpy as np
import pytest

from scaleproof.backends.base import Engine
from scaleproof.bench.batcher import DynamicBatcher
from scaleproof.bench.sut import SampleLibrary


class EchoEngine(Engine):
    """Output row = the input's first value, so a response proves which sample it belongs to."""

    name, backend, precision, device = "echo", "test", "fp32", "cpu"

    def __init__(self, max_batch=64, delay_s=0.0):
        self.max_batch, self.delay_s, self.calls = max_batch, delay_s, []

    def infer(self, x):
        x = x["input"]
        self.calls.append(len(x))
        if self.delay_s:
            time.sleep(self.delay_s)
        return [x.reshape(len(x), -1)[:, :1] * 1.0]


SAMPLES = {"input": np.arange(1000, dtype=np.float32).reshape(1000, 1, 1, 1)}


def loaded(engine):
    """The engine with the test's samples in it, as the sample library leaves it before a SUT starts."""
    SampleLibrary(SAMPLES).load_into(engine)
    return engine


class Collector:
    def __init__(self):
        self.lock, self.got, self.when = threading.Lock(), [], {}

    def __call__(self, ids, rows):
        """As LoadGen's completion: rows are valid only until this returns; None answers without data."""
        now = time.perf_counter()
        with self.lock:
            for k, rid in enumerate(ids):
                self.got.append((rid, None if rows is None else float(rows[k][0])))
                self.when[rid] = now


def test_no_lost_or_duplicated_responses_under_concurrent_producers():
    done = Collector()
    batcher = DynamicBatcher(loaded(EchoEngine(max_batch=16, delay_s=0.0002)), 16, 0.001, done).start()

    def produce(offset):
        for i in range(500):
            rid = offset + i
            batcher.submit([(rid, rid % 1000)])

    threads = [threading.Thread(target=produce, args=(k * 10_000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.stop()
    ids = [rid for rid, _ in done.got]
    assert len(ids) == 2000 and len(set(ids)) == 2000
    assert all(value == rid % 1000 for rid, value in done.got), "a response carried another sample's output"
    assert max(batcher.batch_sizes) <= 16 and sum(k * v for k, v in batcher.batch_sizes.items()) == 2000


def test_batches_keep_arrival_order_and_respect_max_batch():
    done = Collector()
    engine = EchoEngine(max_batch=8)
    batcher = DynamicBatcher(loaded(engine), 8, 0.05, done)
    batcher.submit([(i, i) for i in range(20)])  # queued before the worker starts: 8 + 8 + 4
    batcher.start().stop()
    assert [rid for rid, _ in done.got] == list(range(20))
    assert engine.calls == [1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 4], "every batch size warmed first, then 8 + 8 + 4"


def test_a_lone_request_waits_for_the_window_then_runs():
    done = Collector()
    batcher = DynamicBatcher(loaded(EchoEngine()), 32, 0.02, done).start()
    t0 = time.perf_counter()
    batcher.submit([(7, 7)])
    deadline = time.time() + 2
    while not done.got and time.time() < deadline:
        time.sleep(0.001)
    waited = done.when[7] - t0
    batcher.stop()
    assert 0.019 <= waited < 0.5, f"waited {waited * 1e3:.1f} ms for a 20 ms window"
    assert batcher.batch_sizes == {1: 1}


def test_static_batching_pads_to_the_fixed_batch_without_waiting():
    done = Collector()
    engine = EchoEngine(max_batch=8)
    batcher = DynamicBatcher(loaded(engine), 4, 10.0, done, fixed_batch=True).start()
    t0 = time.perf_counter()
    batcher.submit([(1, 1)])
    batcher.stop()
    assert time.perf_counter() - t0 < 1.0, "static batching must not wait for the window"
    assert engine.calls == [4, 4] and done.got == [(1, 1.0)]  # warm-up, then one padded batch of 4


def test_engine_errors_surface_instead_of_hanging():
    class Broken(EchoEngine):
        def infer(self, x):
            if len(self.calls) >= 4:  # after the warm-up
                raise RuntimeError("device lost")
            return super().infer(x)

    batcher = DynamicBatcher(loaded(Broken()), 4, 0.0, Collector()).start()
    batcher.submit([(1, 1)])
    with pytest.raises(RuntimeError, match="device lost"):
        batcher.stop()


def test_warm_up_runs_on_the_worker_thread_and_its_errors_surface():
    seen = []

    class Recorder(EchoEngine):
        def infer(self, x):
            seen.append(threading.current_thread().name)
            if len(x["input"]) == 3:
                raise RuntimeError("out of memory at batch 3")
            return super().infer(x)

    with pytest.raises(RuntimeError, match="batch 3"):
        DynamicBatcher(loaded(Recorder()), 4, 0.0, Collector()).start()
    assert set(seen) == {"scaleproof-batcher"}


def test_batch_larger_than_the_engine_is_refused():
    with pytest.raises(ValueError, match="engine's limit"):
        DynamicBatcher(loaded(EchoEngine(max_batch=8)), 16, 0.0, Collector())


def test_the_next_test_on_an_engine_finds_its_batch_shapes_warm_unless_the_samples_changed():
    from scaleproof.bench.sut import SutConfig

    engine = EchoEngine(max_batch=8)
    config = SutConfig(max_batch=8, max_delay_s=0.0)

    def one_test(samples):
        engine.calls.clear()
        sut = engine.sut(SampleLibrary(samples), config, Collector()).start()
        warm_up = list(engine.calls)
        sut.submit([(0, 3)])
        sut.stop()
        return warm_up

    first = one_test(SAMPLES)
    assert first == list(range(1, 9))  # every size the batcher can form, before the first test
    again = one_test(SAMPLES)
    assert again == [8]  # only the largest again: it touches the freshly loaded input buffers
    wider = {"input": np.zeros((50, 1, 2, 1), np.float32)}
    assert one_test(wider) == list(range(1, 9))  # another sample shape is another kernel choice


def test_one_engine_thread_serves_test_after_test():
    threads = []

    class Where(EchoEngine):
        def infer(self, x):
            threads.append(threading.get_ident())
            return super().infer(x)

    engine = loaded(Where(max_batch=4))
    for _ in range(3):
        DynamicBatcher(engine, 4, 0.0, Collector()).start().stop()
    assert len(set(threads)) == 1 and threads[0] != threading.get_ident()


def test_an_engine_is_freed_once_its_last_test_is_over_and_an_unstarted_batcher_stops_at_once():
    import gc
    import weakref

    engine = loaded(EchoEngine(max_batch=4))
    DynamicBatcher(engine, 4, 0.0, Collector()).start().stop()
    never_started = DynamicBatcher(engine, 4, 0.0, Collector())
    never_started.stop()  # returns: there is no worker to wait for (a LoadGen test that failed before starting it)
    gone = weakref.ref(engine)
    del engine, never_started
    gc.collect()
    assert gone() is None  # the engine's worker thread does not keep it (or its GPU memory) alive


class AsyncEngine(EchoEngine):
    """Two batches may run at once. A launched batch finishes when the test lets it (`finish`), and its rows are
    written into one of two output buffers, used in turn, only then: a batcher that read them after the engine's
    next-but-one launch, or before its collect, would answer with another batch's rows."""

    inflight = 2

    def __init__(self, max_batch=4):
        super().__init__(max_batch)
        self.launched, self.gates, self.hold = [], [], False
        self._bufs, self._turn = [np.full((max_batch, 1), -1.0), np.full((max_batch, 1), -1.0)], 0

    def launch_indices(self, idx):
        idx = [int(i) for i in idx]
        gate = threading.Event()
        if self.hold:  # the warm-up's launch (during start) runs straight through
            self.launched.append(idx)
            self.gates.append(gate)
        else:
            gate.set()
        self._turn ^= 1
        buf = self._bufs[self._turn]
        buf[:] = -1.0  # the buffer is the engine's from now on: stale rows read from it are wrong

        def collect():
            assert gate.wait(5), "the test never finished this batch"
            if 999 in idx:
                raise RuntimeError("device lost in batch 999")
            buf[:len(idx), 0] = idx
            return [buf]
        return collect

    def finish(self, k):
        self.gates[k].set()


def wait_for(condition, timeout=5.0):
    end = time.perf_counter() + timeout
    while not condition():
        assert time.perf_counter() < end, "timed out"
        time.sleep(0.001)


def started(engine, max_batch=4, fixed=False):
    done = Collector()
    batcher = DynamicBatcher(engine, max_batch, 0.0, done, fixed_batch=fixed).start()
    engine.hold = True
    return batcher, done


def test_an_asynchronous_engine_gets_the_next_batch_while_one_runs_and_answers_in_order():
    engine = loaded(AsyncEngine())
    batcher, done = started(engine)
    batcher.submit([(1, 10)])
    wait_for(lambda: len(engine.launched) == 1)
    batcher.submit([(2, 20), (3, 30)])
    wait_for(lambda: len(engine.launched) == 2)  # launched while the first is still running
    assert done.got == []
    batcher.submit([(4, 40)])
    time.sleep(0.05)
    assert len(engine.launched) == 2  # two in flight is the engine's limit: the third waits for an answer
    engine.finish(1)
    time.sleep(0.05)
    assert done.got == []  # answers go out in launch order: the second waits for the first
    engine.finish(0)
    wait_for(lambda: len(engine.launched) == 3)
    engine.finish(2)
    batcher.stop()
    assert done.got == [(1, 10.0), (2, 20.0), (3, 30.0), (4, 40.0)]
    assert engine.launched == [[10], [20, 30], [40]] and batcher.batch_sizes == {1: 2, 2: 1}


def test_many_requests_through_an_asynchronous_engine_each_get_their_own_row():
    engine = loaded(AsyncEngine(max_batch=8))
    batcher, done = started(engine, max_batch=8)
    engine.hold = False  # batches finish on their own, in any timing
    for rid in range(600):
        batcher.submit([(rid, rid % 1000)])
    batcher.stop()
    assert sorted(done.got) == [(rid, float(rid % 1000)) for rid in range(600)]


def test_static_batching_stays_synchronous_on_an_asynchronous_engine():
    """A padded static batch is formed when the engine is free: two in flight would change what it measures."""
    engine = loaded(AsyncEngine())
    batcher, done = started(engine, fixed=True)
    batcher.submit([(1, 7)])
    batcher.stop()
    assert engine.launched == [] and done.got == [(1, 7.0)]


def test_an_asynchronous_engines_error_answers_every_request_and_surfaces_at_stop():
    """LoadGen ends a test only when every query is answered: after a device error the batcher answers the failed
    batch, the queued requests and later ones without data, instead of leaving LoadGen waiting for ever."""
    engine = loaded(AsyncEngine())
    batcher, done = started(engine)
    batcher.submit([(1, 999)])
    wait_for(lambda: engine.launched)
    batcher.submit([(2, 5)])
    wait_for(lambda: len(engine.launched) == 2)
    batcher.submit([(4, 8)])  # two in flight: this one waits in the queue
    time.sleep(0.05)
    assert len(engine.launched) == 2
    engine.finish(1)  # the batch after the failing one finishes fine
    engine.finish(0)
    wait_for(lambda: len(done.got) == 3)
    batcher.submit([(3, 6)])  # after the error: answered at once, without data
    with pytest.raises(RuntimeError, match="batch 999"):
        batcher.stop()
    assert sorted(done.got, key=lambda g: g[0]) == [(1, None), (2, 5.0), (3, None), (4, None)]


def test_a_batch_that_fails_to_launch_is_answered_with_the_queue():
    class FailsToLaunch(AsyncEngine):
        def launch_indices(self, idx):
            if 998 in idx:
                raise RuntimeError("launch failed at 998")
            return super().launch_indices(idx)

    engine = loaded(FailsToLaunch())
    batcher, done = started(engine)
    engine.hold = False
    batcher.submit([(1, 998), (2, 3)])
    wait_for(lambda: len(done.got) == 2)
    with pytest.raises(RuntimeError, match="launch failed at 998"):
        batcher.stop()
    assert sorted(done.got) == [(1, None), (2, None)]


def test_a_synchronous_engines_error_answers_the_queue_too():
    class Broken(EchoEngine):
        broken = False

        def infer(self, x):
            if self.broken:
                time.sleep(0.05)  # the next request arrives while this batch runs
                raise RuntimeError("device lost")
            return super().infer(x)

    done, engine = Collector(), loaded(Broken())
    batcher = DynamicBatcher(engine, 1, 0.0, done).start()  # batches of one: the second waits queued
    engine.broken = True
    batcher.submit([(1, 1), (2, 2)])
    wait_for(lambda: len(done.got) == 2)
    batcher.submit([(3, 3)])
    with pytest.raises(RuntimeError, match="device lost"):
        batcher.stop()
    assert sorted(done.got) == [(1, None), (2, None), (3, None)]


def test_a_caller_can_keep_an_asynchronous_engine_synchronous():
    engine = loaded(AsyncEngine())
    done = Collector()
    batcher = DynamicBatcher(engine, 4, 0.0, done, pipelined=False).start()
    engine.hold = True
    batcher.submit([(1, 7)])
    batcher.stop()
    assert engine.launched == [] and done.got == [(1, 7.0)]
