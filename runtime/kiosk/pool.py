"""A bounded pool of query workers sharing one loaded Retriever.

Why bounded: a kiosk's CPU answers a few photos a second. Piling up more requests only makes every
shopper wait longer and grows memory, so a request beyond ``workers + queue`` in flight is refused at
once (the API answers 503 with Retry-After) and a request that waits longer than its timeout is answered
504. A timed-out query cannot be interrupted inside ONNX Runtime: it keeps its admission slot until it
really finishes, so timeouts never let more work in than the bound.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, TypeVar

T = TypeVar("T")


class Busy(Exception):
    """Every worker is busy and the queue is full."""


class QueryTimeout(Exception):
    """The job did not finish within its timeout."""


class QueryPool:
    """``workers`` threads, at most ``workers + queue`` jobs admitted at a time."""

    def __init__(self, workers: int, queue: int) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"need workers >= 1 and queue >= 0, got {workers}, {queue}")
        self.workers = workers
        self.capacity = workers + queue
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kiosk-query")
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Jobs admitted and not finished (running or queued)."""
        return self._in_flight

    def run(self, job: Callable[[], T], timeout: float) -> T:
        """Run ``job`` on a worker and wait for it; Busy when full, QueryTimeout after ``timeout`` s."""
        if not self._slots.acquire(blocking=False):
            raise Busy(f"all {self.capacity} query slots are taken")
        with self._lock:
            self._in_flight += 1
        try:
            future: Future[T] = self._executor.submit(job)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            raise QueryTimeout(f"no answer within {timeout:g} s") from None

    def _release(self, _: Future | None) -> None:
        with self._lock:
            self._in_flight -= 1
        self._slots.release()

    def close(self) -> None:
        """Stop taking jobs and wait for those running; idempotent."""
        self._executor.shutdown(wait=True, cancel_futures=True)
