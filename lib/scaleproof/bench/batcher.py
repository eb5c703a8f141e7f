"""A dynamic batcher between a request source (LoadGen) and an engine: the in-process system under test.

Requests are indices of samples already loaded into the engine (by the sample library, `sut.SampleLibrary`).
A worker thread forms a batch from the queue in arrival order and runs it when the batch is full
(`max_batch`) or when the oldest waiting request has waited `max_delay_s`, the policy of Triton's dynamic
batcher. The output buffer is allocated once, at start, and a batch is formed from sample indices.
Every batch size the batcher can form is run once before the first test, on the worker thread itself
(cuDNN and cuBLAS keep per-thread handles and plans), so no first-call cost (a new shape's kernel
selection, a lazy allocation) lands inside the measured run. The worker thread belongs to the engine and
outlives each batcher, so the next test on the same engine finds its shapes warm: warming 128 shapes of an
eager FP32 ResNet-50 again before every 1 s search run cost about 6 s per run on an H200 host.

An engine that runs batches asynchronously (`Engine.inflight` > 1: a CUDA-graph engine) is kept busy: the
worker launches the next batch while a completion thread waits for the previous one and answers its
requests, so the device does not idle while the host copies outputs and calls LoadGen back.

`fixed_batch=True` is the static comparison: no queue window, each inference runs at exactly
`max_batch` rows (zero-padded), taking whatever requests are waiting when the engine is free.
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable

import numpy as np

from .sut import CompleteFn


class EngineThread:
    """The one thread that runs an engine's batches, test after test, and the batch sizes it has warmed."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.warmed: set[tuple[object, int]] = set()  # (sample shape, batch size)
        threading.Thread(target=self._serve, name="scaleproof-batcher", daemon=True).start()

    def _serve(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                job()
            except BaseException:  # noqa: BLE001 - a batcher keeps its own error; the thread must serve the next
                pass
            job = None  # the finished batcher holds its engine: waiting with it would keep the engine alive


_ENGINE_THREADS: weakref.WeakKeyDictionary[object, EngineThread] = weakref.WeakKeyDictionary()


def engine_thread(engine) -> EngineThread:
    """The engine's worker thread, started on first use; it ends when the engine is collected."""
    if (t := _ENGINE_THREADS.get(engine)) is None:
        t = _ENGINE_THREADS[engine] = EngineThread()
        weakref.finalize(engine, t.jobs.put, None)
    return t


class DynamicBatcher:
    # prometheus_client exporters (`bench.batcher_metrics`) a batcher reports each batch to, when one is asked for
    observers: list = []

    def __init__(self, engine, max_batch: int, max_delay_s: float, complete: CompleteFn,
                 fixed_batch: bool = False, sample_shape: object = None, pipelined: bool = True) -> None:
        """`engine` holds the samples already (`SampleLibrary.load_into`); `complete` gets views into the output
        buffer, valid only until it returns (LoadGen copies what it keeps). `sample_shape` names the shape of
        the loaded samples: batch sizes warmed for one sample shape are not warm for another."""
        if max_batch < 1 or max_batch > engine.max_batch:
            raise ValueError(f"batcher max_batch {max_batch} must be in 1..{engine.max_batch} (the engine's limit)")
        if max_delay_s < 0:
            raise ValueError(f"max_delay_s must be >= 0, got {max_delay_s}")
        self.engine, self.complete = engine, complete
        self.max_batch, self.max_delay_s, self.fixed_batch = max_batch, max_delay_s, fixed_batch
        self._idx = np.zeros(max_batch, dtype=np.int64)  # sample indices of the batch being formed
        self.out_buf: np.ndarray | None = None  # the first output's rows, allocated once by the worker's warm-up
        self.batch_sizes: Counter[int] = Counter()
        self.queue_s = 0.0  # time the answered requests waited in the queue, summed (Triton's queue duration)
        self.compute_s = 0.0  # time the engine took for the batches, summed (pipelined: launch to collected)
        self._queue: deque[tuple[int, int, float]] = deque()  # (request id, sample index, arrival time)
        self._cond = threading.Condition()
        self._stop = False
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._thread = engine_thread(engine)
        self._sample_shape = sample_shape
        self._started = False
        # an asynchronous engine runs batches back to back unless the caller says not to; static batching keeps
        # its meaning (a padded batch is formed when the engine is free), so it stays synchronous
        self._pipelined = pipelined and engine.inflight > 1 and not fixed_batch

    # producer side ---------------------------------------------------------------------------
    def submit(self, requests: list[tuple[int, int]]) -> None:
        """Queue (request id, sample index) pairs; called from LoadGen's issue thread."""
        now = time.perf_counter()
        with self._cond:
            if self._error is not None:  # the engine failed: answer at once (empty), so LoadGen can end the test
                self.complete([rid for rid, _ in requests], None)
                return
            was_empty = not self._queue
            self._queue.extend((rid, idx, now) for rid, idx in requests)
            # wake the worker only when it may be waiting for work or for a full batch
            if was_empty or len(self._queue) >= self.max_batch:
                self._cond.notify()

    def start(self) -> DynamicBatcher:
        """Start serving on the engine's thread; return once every batch shape it will run is warm.
        One batcher at a time serves an engine (the next one's start waits for this one's stop)."""
        self._started = True
        self._thread.jobs.put(self._run)
        self._ready.wait()
        if self._error is not None:
            self._done.wait()
            raise self._error
        return self

    def stop(self) -> None:
        """Drain what is queued, then stop the worker; re-raise an engine error from the worker."""
        if not self._started:
            return
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._done.wait()
        if self._error is not None:
            raise self._error

    # worker side -----------------------------------------------------------------------------
    def _take(self) -> list[tuple[int, int, float]] | None:
        with self._cond:
            while True:
                if self._queue:
                    full = len(self._queue) >= self.max_batch
                    wait = 0.0 if (full or self.fixed_batch or self._stop) else \
                        self._queue[0][2] + self.max_delay_s - time.perf_counter()
                    if wait <= 0:
                        n = min(self.max_batch, len(self._queue))
                        batch = [self._queue.popleft() for _ in range(n)]
                        now = time.perf_counter()
                        waited = sum(now - t for _, _, t in batch)
                        self.queue_s += waited
                        for observer in self.observers:
                            observer.formed(self.engine, n, waited)
                        return batch
                    self._cond.wait(wait)
                elif self._stop:
                    return None
                else:
                    self._cond.wait()

    def _warm_up(self) -> None:
        sizes = [self.max_batch] if self.fixed_batch else range(1, self.max_batch + 1)
        # shapes this thread ran before are warm; the largest runs again all the same, which touches the
        # input buffers the sample library just filled and gives the output's shape
        todo = [b for b in sizes if (self._sample_shape, b) not in self._thread.warmed] or [self.max_batch]
        for b in todo:
            first = self.engine.infer_indices(self._idx[:b])[0]
            self._thread.warmed.add((self._sample_shape, b))
        if self._pipelined:  # the launch path once too, so its first use is not inside a measured run
            self.engine.launch_indices(self._idx[:self.max_batch].copy())()
        self.out_buf = np.empty((self.max_batch, *first.shape[1:]), first.dtype)

    def run_extra(self) -> dict[str, float | None]:
        """Queue and compute time of this test, as a LoadGen run records them beside its batch sizes."""
        requests, batches = sum(k * v for k, v in self.batch_sizes.items()), sum(self.batch_sizes.values())
        return {"queue_ms_mean": self.queue_s / requests * 1e3 if requests else None,
                "compute_ms_per_batch": self.compute_s / batches * 1e3 if batches and not self._pipelined else None}

    @property
    def error(self) -> BaseException | None:
        """The engine's error, once one happened (stop() raises it)."""
        return self._error

    def _fail(self, e: BaseException, batch: list[tuple[int, int, float]] | None = None) -> None:
        """Keep the engine's error for stop(), and answer `batch` and every waiting request without data (None
        rows): LoadGen ends a test only once each query is answered, and would otherwise wait forever."""
        with self._cond:
            if self._error is None:
                self._error = e
            waiting = [*(batch or []), *self._queue]
            self._queue.clear()
        if waiting:
            try:
                self.complete([rid for rid, _, _ in waiting], None)
            except BaseException:  # noqa: BLE001 - the engine's error is kept; this must not end the thread
                pass

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._done.set()

    def _serve(self) -> None:
        try:
            self._warm_up()
        except BaseException as e:
            self._error = e
            return
        finally:
            self._ready.set()
        if self._pipelined:
            return self._serve_pipelined()
        try:
            while (batch := self._take()) is not None:
                try:
                    t0 = time.perf_counter()
                    self._keep_rows(batch, self.engine.infer_indices(self._indices(batch))[0])
                    took = time.perf_counter() - t0
                    self.compute_s += took
                    for observer in self.observers:
                        observer.computed(self.engine, took)
                except BaseException as e:  # surfaced by stop(); the batch is answered (empty) like the queue
                    return self._fail(e, batch)
                self._answer(batch)
        except BaseException as e:
            self._fail(e)

    def _indices(self, batch: list[tuple[int, int, float]]) -> np.ndarray:
        """The batch's sample indices, padded with its first to max_batch rows for static batching."""
        n = len(batch)
        self._idx[:n] = [idx for _, idx, _ in batch]
        rows = self.max_batch if self.fixed_batch else n
        if rows > n:
            self._idx[n:rows] = self._idx[0]  # padding rows: any sample; their outputs are dropped
        return self._idx[:rows]

    def _keep_rows(self, batch: list[tuple[int, int, float]], first_output: np.ndarray) -> None:
        """The batch's rows of the first output, into the buffer LoadGen is answered from."""
        self.out_buf[:len(batch)] = first_output[:len(batch)]

    def _answer(self, batch: list[tuple[int, int, float]]) -> None:
        """LoadGen gets the first output's rows (performance mode reads none of them)."""
        n = len(batch)
        self.batch_sizes[n] += 1
        self.complete([rid for rid, _, _ in batch], self.out_buf[:n])

    def _serve_pipelined(self) -> None:
        """Launch batches on this thread while a completion thread answers them, in launch order; at most
        `engine.inflight` batches are launched and not yet answered."""
        free = threading.Semaphore(self.engine.inflight)
        launched: queue.SimpleQueue = queue.SimpleQueue()

        def answer_in_order() -> None:
            while (item := launched.get()) is not None:
                batch, collect = item
                try:
                    try:
                        self._keep_rows(batch, collect()[0])
                    except BaseException as e:  # this batch is answered (empty), later ones as they finish
                        self._fail(e, batch)
                        continue
                    self._answer(batch)
                except BaseException as e:
                    self._fail(e)
                finally:
                    free.release()

        completer = threading.Thread(target=answer_in_order, name="scaleproof-complete", daemon=True)
        completer.start()
        batch = None
        try:
            while True:
                free.acquire()
                if self._error is not None or (batch := self._take()) is None:
                    break
                launched.put((batch, self.engine.launch_indices(self._indices(batch).copy())))
                batch = None
        except BaseException as e:
            self._fail(e, batch)  # a batch taken and not launched is answered (empty) like the queue
        finally:
            launched.put(None)
            completer.join()
