"""A micro-batcher: concurrent next-token requests share one forward pass instead of queueing one by one."""

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

Request = TypeVar("Request")
Result = TypeVar("Result")


class MicroBatcher(Generic[Request, Result]):
    """Collects requests for up to `max_wait` seconds (or `max_batch` of them) and runs them as one batch."""

    def __init__(self, run_batch: Callable[[list[Request]], list[Result]], max_batch: int = 16, max_wait: float = 0.01):
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.pending: queue.Queue[tuple[Request, Future]] = queue.Queue()
        threading.Thread(target=self._serve, name="xlm-demo-batcher", daemon=True).start()

    def submit(self, request: Request) -> Result:
        """Block until this request's batch has run; its exception, if any, is raised here."""
        future: Future = Future()
        self.pending.put((request, future))
        return future.result()

    def _serve(self) -> None:
        while True:
            batch = [self.pending.get()]
            try:
                while len(batch) < self.max_batch:
                    batch.append(self.pending.get(timeout=self.max_wait))
            except queue.Empty:
                pass
            requests, futures = zip(*batch, strict=True)
            try:
                results = self.run_batch(list(requests))
            except Exception as error:  # handed to every caller of this batch, never lost in this thread
                for future in futures:
                    future.set_exception(error)
                continue
            for future, result in zip(futures, results, strict=True):
                future.set_result(result)
