"""The page's hot path beside Gradio's queue: typing, Step, pick, Undo, Reset and Continue as plain requests on
Gradio's app, each answered with view records (orjson bytes). A Gradio event costs the server several milliseconds
of its own work around the model's share; a request here costs a fraction of one."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ...engine import Engine
from ...engine.scheduler import Superseded, wanted_while
from ..clients import TOO_FAST, RateLimit, TrustedProxies, request_address
from ..follow.rooms import Room, Rooms
from ..guards import log_user_error
from .actions import answer, continuation
from .record import ViewRecord
from .requests import ViewRequest, read_request

MAX_BODY = 64 * 1024  # bytes: a 20,000-character text and 512 positions' ids fit several times over
PAGES_REMEMBERED = 4096  # pages whose latest request number is kept, to drop their older requests
# Requests from one address: a page sends one at a time, a few a second while its person types; a hall of people
# behind one address (a school, a conference) fits in the burst.
REQUESTS_PER_SECOND, REQUESTS_BURST = 100.0, 1_000
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy holds the events back


class UserError(Exception):
    """A request a page would not send: answered with its status and one sentence."""

    def __init__(self, status: int, sentence: str):
        super().__init__(sentence)
        self.status = status


class Latest:
    """Each page's newest request number: a page that sends faster than it is answered has its older requests
    dropped, not queued."""

    def __init__(self, capacity: int = PAGES_REMEMBERED):
        self.capacity = capacity
        self._seq: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def arrived(self, page: str, seq: int) -> None:
        """Note a request as it comes."""
        if not page:
            return
        with self._lock:
            self._seq[page] = max(seq, self._seq.pop(page, seq))
            while len(self._seq) > self.capacity:
                self._seq.popitem(last=False)

    def superseded(self, page: str, seq: int) -> bool:
        """Whether a newer request of the same page has come since."""
        return bool(page) and self._seq.get(page, seq) > seq


@contextmanager
def mistakes_refused() -> Iterator[None]:
    """An engine's or a request's ValueError as the UserError the page is answered with (400, one sentence)."""
    try:
        yield
    except ValueError as error:
        raise UserError(400, sentence(error)) from error


def sentence(error: Exception) -> str:
    """An engine's message as a sentence: capitalised, with its full stop."""
    text = str(error).strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else f"{text}."


async def read_body(request: Request) -> object:
    """The JSON a page sends, within MAX_BODY bytes."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise UserError(415, "Send the request as JSON (Content-Type: application/json).")
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise UserError(413, f"The request is larger than {MAX_BODY // 1024} KB.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise UserError(413, f"The request is larger than {MAX_BODY // 1024} KB.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise UserError(400, "The request's body is not valid JSON.") from error


class ViewRoutes:
    """POST view: one record for the request's action; POST view/continue: a record per token as server-sent
    events, until the continuation ends or the page closes the stream (Stop)."""

    def __init__(self, engine: Engine, rooms: Rooms, proxies: TrustedProxies, concurrency: int):
        self.engine, self.rooms, self.proxies = engine, rooms, proxies
        self.limiter = anyio.CapacityLimiter(concurrency)  # requests waiting on the scheduler at once
        self.latest = Latest()
        self.requests = RateLimit(REQUESTS_PER_SECOND, REQUESTS_BURST)

    def routes(self) -> list[Route]:
        return [Route("/view", self.view, methods=["POST"]), Route("/view/continue", self.go_on, methods=["POST"])]

    async def checked(self, request: Request) -> ViewRequest:
        """The page's request, read and checked; UserError for anything else."""
        if not self.requests.allow(request_address(request, self.proxies)):
            raise UserError(429, TOO_FAST)
        body = await read_body(request)
        with mistakes_refused():
            view_request = read_request(body, self.engine)
        self.latest.arrived(view_request.page, view_request.seq)
        return view_request

    async def view(self, request: Request) -> Response:
        try:
            view_request = await self.checked(request)
            record = await anyio.to_thread.run_sync(self.answer, view_request, limiter=self.limiter)
        except UserError as error:
            return refused(request, error)
        if record is None:
            return refused(request, UserError(409, "A newer request from this page replaced this one."))
        return Response(record.to_json(), media_type="application/json")

    def answer(self, view_request: ViewRequest) -> ViewRecord | None:
        """The record for a request, shown to the presenter's room too; None when a newer one has come."""
        page, seq = view_request.page, view_request.seq
        if self.latest.superseded(page, seq):
            return None
        try:  # dropped from the model's queue too, should a newer request come while it waits
            with wanted_while(lambda: not self.latest.superseded(page, seq)), mistakes_refused():
                record = answer(self.engine, view_request)
        except Superseded:
            return None
        room = self.room(view_request)
        if room is not None:
            room.show(record.with_every_span(self.engine).to_json(), whole=True)
        return record

    async def go_on(self, request: Request) -> Response:
        try:
            view_request = await self.checked(request)
            records = await anyio.to_thread.run_sync(self.started, view_request, limiter=self.limiter)
        except UserError as error:
            return refused(request, error)
        return StreamingResponse(
            self.events(records, self.room(view_request)), media_type="text/event-stream", headers=STREAM_HEADERS
        )

    def started(self, view_request: ViewRequest) -> tuple[ViewRecord, Iterator[ViewRecord]]:
        """A continuation's first record and the rest to come; UserError if it cannot start."""
        with mistakes_refused():
            records = continuation(self.engine, view_request)
            return next(records), records

    async def events(self, started: tuple[ViewRecord, Iterator[ViewRecord]], room: Room | None):
        """Each record as a server-sent event as it comes, the same bytes to the room. A worker thread continues
        without waiting for the page to read each token; closing the stream (Stop, or the page leaving) ends the
        continuation at its next token."""
        first, records = started
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
                message = record.to_json()
                if room is not None:
                    room.show(message, whole=False)
                yield b"data: " + message + b"\n\n"
                record = await arrived.get()
        finally:
            stop.set()
            await asyncio.shield(producing)

    def room(self, view_request: ViewRequest) -> Room | None:
        """The room the presenter's key opens, if the request carries one."""
        return self.rooms.presented(view_request.room) if view_request.room else None


def refused(request: Request, error: UserError) -> Response:
    """A user's mistake: one log line, and one sentence to the page."""
    log_user_error(str(error), f"{request.method} {request.url.path} ({error.status})")
    return PlainTextResponse(str(error), status_code=error.status)
