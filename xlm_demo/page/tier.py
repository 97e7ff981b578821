"""The model tier: what the page's route and sections ask of the model, and the one implementation that runs it in
this process. Replicas elsewhere (xlm_demo/cluster/) implement the same interface; the page knows only this one."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from functools import partial

import anyio

from ..engine import Engine
from ..engine.scheduler import Superseded, wanted_while
from .next_token.actions import answer, continuation
from .next_token.record import ViewRecord
from .requests import ModelFacts, ViewRequest

IN_PROCESS = "in-process"  # what X-Served-By says when this process's own engine answered


@dataclass(frozen=True)
class Served:
    """A view record as the page reads it (JSON), the same view with every span for a room when asked, and the
    replica that computed both."""

    record: bytes
    whole: bytes | None
    served_by: str


class Unavailable(Exception):
    """No replica of the model could answer: a sentence for the page, which may try again."""

    status = 503  # the route's answer: the service, not the request, failed


def always() -> bool:
    """A request wanted whenever its turn comes."""
    return True


class ModelTier(ABC):
    """Where the page's model work runs: each method may raise ValueError with one sentence for a user's mistake."""

    facts: ModelFacts

    @abstractmethod
    async def view(self, request: ViewRequest, whole: bool, wanted: Callable[[], bool]) -> Served | None:
        """The record after the request's action (show, Step, pick, Undo, Reset), None if no longer `wanted` when its
        turn comes; `whole`: a room is shown it too."""

    @abstractmethod
    def continuation(self, request: ViewRequest) -> AsyncIterator[Served]:
        """A record per continued token, then the settled view; closing the iterator stops the continuation."""

    @abstractmethod
    def reading(self, event: Callable) -> Callable:
        """A section's event function (its inputs, then `engine=`) as the page's callback of the inputs alone."""


class InProcessTier(ModelTier):
    """The engine in this process: each request waits in a worker thread on the engine's scheduler, up to
    `concurrency` at once."""

    def __init__(self, engine: Engine, concurrency: int, name: str = IN_PROCESS):
        self.engine, self.name = engine, name
        self.facts = ModelFacts.of(engine)
        self.limiter = anyio.CapacityLimiter(concurrency)

    async def view(self, request: ViewRequest, whole: bool, wanted: Callable[[], bool]) -> Served | None:
        return await anyio.to_thread.run_sync(self.served, request, whole, wanted, limiter=self.limiter)

    def served(self, request: ViewRequest, whole: bool, wanted: Callable[[], bool]) -> Served | None:
        """The view, computed in the calling thread; None once not wanted, even while it waits on the model."""
        if not wanted():
            return None
        try:
            with wanted_while(wanted):
                record = answer(self.engine, request)
        except Superseded:
            return None
        every_span = record.with_every_span(self.engine).to_json() if whole else None
        return Served(record.to_json(), every_span, self.name)

    async def continuation(self, request: ViewRequest) -> AsyncIterator[Served]:
        """A worker thread continues without waiting for the page to read each token; closing the iterator ends
        the continuation at its next token."""
        records, first = await anyio.to_thread.run_sync(self.started, request, limiter=self.limiter)
        loop, arrived, stop = asyncio.get_running_loop(), asyncio.Queue(), threading.Event()

        def produce() -> None:
            try:
                for record in records:
                    loop.call_soon_threadsafe(arrived.put_nowait, record)
                    if stop.is_set():
                        break
            finally:
                records.close()
                loop.call_soon_threadsafe(arrived.put_nowait, None)

        producing = asyncio.ensure_future(anyio.to_thread.run_sync(produce, limiter=self.limiter))
        try:
            record = first
            while record is not None:
                yield Served(record.to_json(), None, self.name)
                record = await arrived.get()
        finally:
            stop.set()
            await asyncio.shield(producing)

    def started(self, request: ViewRequest) -> tuple[Iterator[ViewRecord], ViewRecord]:
        """A continuation's records to come and its first (ValueError if it cannot start)."""
        records = continuation(self.engine, request)
        return records, next(records)

    def reading(self, event: Callable) -> Callable:
        return partial(event, engine=self.engine)
