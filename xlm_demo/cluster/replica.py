"""One replica of the model tier, as a Ray Serve deployment: a whole Engine (its prefix cache and scheduler) behind
the page's requests, Continue's stream and the sections' readings, which the front sends it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import anyio
import gradio as gr
from ray import serve

from ..engine import Engine
from ..page.requests import ModelFacts, ViewRequest
from ..page.tier import InProcessTier, Served, always

log = logging.getLogger("xlm_demo")

FINISHED = object()  # what next() answers when a reading's generator is done


@dataclass(frozen=True)
class Refused:
    """A user's mistake (a request's ValueError, a section's gr.Error), answered to the front, which raises it:
    raised here, Ray would log it as a fault, traceback and all."""

    error: ValueError


def refusal(error: ValueError) -> Refused:
    """The mistake to answer with; a gr.Error that is a fault (it asks for its traceback) is raised again."""
    if isinstance(error, gr.Error) and error.print_exception:
        raise error
    return Refused(error)


class ModelReplica:
    """Answers what the page's route and sections ask of the model, with its own engine; up to `concurrency`
    requests wait on its scheduler at once, so that each batch runs all that wait."""

    def __init__(self, model: str | None, device: str, dtype: str, quantize: str, concurrency: int, cache_bytes: int):
        engine = Engine.load(model, device=device, dtype=dtype, quantize=quantize, prefix_cache_bytes=cache_bytes)
        self.name = serve.get_replica_context().replica_id.unique_id
        self.tier = InProcessTier(engine, concurrency, name=self.name)
        log.info("replica %s serves %s on %s (%s)", self.name, engine.source, engine.device, engine.dtype)

    def facts(self) -> ModelFacts:
        """What the front checks requests against."""
        return self.tier.facts

    async def view(self, request: ViewRequest, whole: bool) -> Served | Refused:
        try:
            return await self.tier.view(request, whole, always)  # the front dropped a page's older requests
        except ValueError as error:
            return refusal(error)

    async def continuation(self, request: ViewRequest) -> AsyncIterator[Served | Refused]:
        """Continue's records as they come (or why it cannot start); the front cancelling the stream stops it."""
        records = self.tier.continuation(request)
        try:
            first = await anext(records)
        except ValueError as error:
            yield refusal(error)
            return
        try:
            yield first
            async for served in records:
                yield served
        finally:
            await records.aclose()

    async def reading(self, event: Callable, args: tuple) -> object:
        """A section's event, run on this replica's engine: its outputs, or the user's mistake."""
        try:
            return await anyio.to_thread.run_sync(self.run, event, args, limiter=self.tier.limiter)
        except ValueError as error:
            return refusal(error)

    def run(self, event: Callable, args: tuple) -> object:
        """The event's outputs, computed in the calling thread."""
        return self.tier.reading(event)(*args)

    async def readings(self, event: Callable, args: tuple) -> AsyncIterator[object]:
        """A section's event that yields (the lens: its layers first, then its verdict): each of its outputs, or the
        user's mistake last."""
        outputs: Iterator = self.tier.reading(event)(*args)
        try:
            while (item := await anyio.to_thread.run_sync(next, outputs, FINISHED)) is not FINISHED:
                yield item
        except ValueError as error:
            yield refusal(error)
        finally:
            outputs.close()
