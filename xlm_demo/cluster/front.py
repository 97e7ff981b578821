"""The front's side of the model tier: every request goes to a replica through Ray Serve's handle, with the page's
id as its session id, so that the router's consistent hash keeps a page on the replica whose prefix cache holds its
text. A request whose replica is lost is sent again, to a replica that rebuilds the prefix from the request's text."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace

import gradio as gr
import orjson
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.handle import DeploymentHandle

from ..page.requests import ModelFacts, ViewRequest
from ..page.state import Chosen
from ..page.tier import ModelTier, Served, Unavailable, always
from .replica import Refused

log = logging.getLogger("xlm_demo")

# Tries of one request: the replica that had it is gone, the next try goes to another (Ray marks the lost one as
# dead on its first failure), and a third covers a second loss while the first is being replaced.
TRIES = 3
LOST = "The model's replicas are unavailable; try again in a moment."


def lost_or_raised(error: RayTaskError | RayActorError, what: str, attempt: int) -> None:
    """Log a try lost with its replica (the caller tries again); raise what the replica's own code raised (a user's
    mistake as ValueError, a section's gr.Error), as it was raised there."""
    cause = error.cause if isinstance(error, RayTaskError) else error
    if not isinstance(cause, RayActorError):
        raise cause from None
    log.warning("a replica was lost during %s (try %d of %d): %s", what, attempt, TRIES, type(cause).__name__)


class ReplicaTier(ModelTier):
    """The model tier on Ray Serve's replicas; this process does no model work."""

    def __init__(self, handle: DeploymentHandle, facts: ModelFacts):
        self.handle, self.facts = handle, facts
        self.in_loop: dict[asyncio.AbstractEventLoop, DeploymentHandle] = {}

    def session(self, method: str, page: str = "", stream: bool = False) -> DeploymentHandle:
        """The handle for one of the replica's methods, routed by the page's id, over gRPC straight to the replica
        (half the front's CPU per request of Ray's object references, which Serve uses by default). In an event
        loop (the route's), its router runs in that loop; elsewhere (a section's worker thread), in Ray's own."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        handle = self.handle if loop is None else self.loop_handle(loop)
        return handle.options(method_name=method, session_id=page, stream=stream, _by_reference=False)

    def loop_handle(self, loop: asyncio.AbstractEventLoop) -> DeploymentHandle:
        """A handle whose router runs in `loop`: a request then stays in the loop's thread instead of going to Ray's
        router thread and back (a sixth of the front's CPU per request)."""
        if loop not in self.in_loop:
            deployment = self.handle.deployment_id
            handle = DeploymentHandle(deployment.name, deployment.app_name)
            handle._init(_run_router_in_separate_loop=False)
            self.in_loop[loop] = handle
        return self.in_loop[loop]

    async def view(self, request: ViewRequest, whole: bool, wanted: Callable[[], bool]) -> Served | None:
        for attempt in range(1, TRIES + 1):
            if not wanted():
                return None
            try:
                return answered(await self.session("view", request.page).remote(request, whole))
            except (RayTaskError, RayActorError) as error:
                lost_or_raised(error, "a view", attempt)
        raise Unavailable(LOST)

    async def continuation(self, request: ViewRequest) -> AsyncIterator[Served]:
        """The replica's records as they come. If its replica is lost before the first, the continuation starts on
        another; if after, it ends there: another replica answers the view of the tokens so far."""
        last = None
        for attempt in range(1, TRIES + 1):
            stream = self.session("continuation", request.page, stream=True).remote(request)
            try:
                async for served in stream:
                    last = answered(served)
                    yield served
                return
            except (RayTaskError, RayActorError) as error:
                lost_or_raised(error, "a continuation", attempt)
            finally:
                stream.cancel()  # the page closed the stream (Stop), or the replica is gone
            if last is not None:
                break
        if last is None:
            raise Unavailable(LOST)
        settled = await self.view(so_far(request, last), False, always)
        yield settled

    def reading(self, event: Callable) -> Callable:
        """The event run on a replica; a generator's outputs come as the replica yields them."""

        def run(*args):
            for attempt in range(1, TRIES + 1):
                try:
                    return answered(self.session("reading").remote(event, args).result())
                except (RayTaskError, RayActorError) as error:
                    lost_or_raised(error, "a reading", attempt)
            raise gr.Error(LOST, print_exception=False)

        def streamed(*args) -> Iterator:
            try:
                for outputs in self.session("readings", stream=True).remote(event, args):
                    yield answered(outputs)
            except (RayTaskError, RayActorError) as error:  # lost: the section's button asks again
                lost_or_raised(error, "a reading", TRIES)
                raise gr.Error(LOST, print_exception=False) from None

        callback = streamed if inspect.isgeneratorfunction(event) else run
        functools.update_wrapper(callback, event)
        callback.__signature__ = inspect.signature(functools.partial(event, engine=None))
        return callback


def answered(result):
    """A replica's answer, or the user's mistake it refused, raised here."""
    if isinstance(result, Refused):
        raise result.error
    return result


def so_far(request: ViewRequest, last: Served) -> ViewRequest:
    """The request for the settled view of a continuation that stopped at its record `last`."""
    record = orjson.loads(last.record)
    chosen = tuple(map(Chosen, record["appended"], record["appended_langs"]))
    return replace(request, action="show", state=replace(request.state, chosen=chosen))
