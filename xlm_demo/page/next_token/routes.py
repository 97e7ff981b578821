"""The page's hot path beside Gradio's queue: typing, Step, pick, Undo, Reset and Continue as plain requests on
Gradio's app, each answered with view records (orjson bytes). A Gradio event costs the server several milliseconds
of its own work around the model's share; a request here costs a fraction of one."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Iterator

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ...engine import Engine
from ..clients import TOO_FAST, RateLimit, TrustedProxies, request_address
from ..follow.rooms import Room, Rooms
from ..guards import refused
from ..requests import UserError, ViewRequest, read_view_request
from .actions import answer, continuation
from .record import ViewRecord

MAX_BODY = 64 * 1024  # bytes: a 20,000-character text and 512 positions' ids fit several times over
PAGES_REMEMBERED = 4096  # pages whose latest request number is kept, to drop their older requests
# Requests from one address: a page sends one at a time, a few a second while its person types; a hall of people
# behind one address (a school, a conference) fits in the burst.
REQUESTS_PER_SECOND, REQUESTS_BURST = 100.0, 1_000
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy holds the events back


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


async def read_body(request: Request) -> object:
    """The JSON a page sends, within MAX_BODY bytes."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise UserError("Send the request as JSON (Content-Type: application/json).", 415)
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise UserError(f"The request is larger than {MAX_BODY // 1024} KB.", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise UserError(f"The request is larger than {MAX_BODY // 1024} KB.", 413)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise UserError("The request's body is not valid JSON.") from error


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
        """The page's request, read and checked (requests.py); UserError for anything a page would not send."""
        if not self.requests.allow(request_address(request, self.proxies)):
            raise UserError(TOO_FAST, 429)
        view_request = read_view_request(self.engine, await read_body(request))
        self.latest.arrived(view_request.page, view_request.seq)
        return view_request

    async def view(self, request: Request) -> Response:
        try:
            view_request = await self.checked(request)
            record = await anyio.to_thread.run_sync(self.answer, view_request, limiter=self.limiter)
        except ValueError as error:  # a UserError, or the engine's refusal of what it was asked
            return refused(request, error)
        if record is None:
            return refused(request, UserError("A newer request from this page replaced this one.", 409))
        return Response(record.to_json(), media_type="application/json")

    def answer(self, view_request: ViewRequest) -> ViewRecord | None:
        """The record for a request, shown to the presenter's room too; None when a newer one has come."""
        if self.latest.superseded(view_request.page, view_request.seq):
            return None
        record = answer(self.engine, view_request)
        room = self.room(view_request)
        if room is not None:
            room.show(record.with_every_span(self.engine).to_json(), whole=True)
        return record

    async def go_on(self, request: Request) -> Response:
        try:
            view_request = await self.checked(request)
            records = await anyio.to_thread.run_sync(self.started, view_request, limiter=self.limiter)
        except ValueError as error:
            return refused(request, error)
        return StreamingResponse(
            self.events(records, self.room(view_request)), media_type="text/event-stream", headers=STREAM_HEADERS
        )

    def started(self, view_request: ViewRequest) -> tuple[ViewRecord, Iterator[ViewRecord]]:
        """A continuation's first record and the rest to come; ValueError if it cannot start."""
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
