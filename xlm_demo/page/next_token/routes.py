"""The page's hot path beside Gradio's queue: typing, Step, pick, Undo, Reset and Continue as plain requests on
Gradio's app, each answered with view records (orjson bytes). A Gradio event costs the server several milliseconds
of its own work around the model's share; a request here costs a fraction of one."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..clients import TOO_FAST, RateLimit, TrustedProxies, request_address
from ..follow.rooms import Room, Rooms
from ..guards import refused
from ..requests import UserError, ViewRequest, read_view_request
from ..tier import ModelTier, Served, Unavailable

MAX_BODY = 64 * 1024  # bytes: a 20,000-character text and 512 positions' ids fit several times over
PAGES_REMEMBERED = 4096  # pages whose latest request number is kept, to drop their older requests
# Requests from one address: a page sends one at a time, a few a second while its person types; a hall of people
# behind one address (a school, a conference) fits in the burst.
REQUESTS_PER_SECOND, REQUESTS_BURST = 100.0, 1_000
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy holds the events back
SERVED_BY = "X-Served-By"  # the header naming the replica that computed an answer


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
    events, until the continuation ends or the page closes the stream (Stop). The model tier computes the records;
    each answer names who did (X-Served-By)."""

    def __init__(self, tier: ModelTier, rooms: Rooms, proxies: TrustedProxies):
        self.tier, self.rooms, self.proxies = tier, rooms, proxies
        self.latest = Latest()
        self.requests = RateLimit(REQUESTS_PER_SECOND, REQUESTS_BURST)

    def routes(self) -> list[Route]:
        return [Route("/view", self.view, methods=["POST"]), Route("/view/continue", self.go_on, methods=["POST"])]

    async def checked(self, request: Request) -> ViewRequest:
        """The page's request, read and checked (requests.py); UserError for anything a page would not send."""
        if not self.requests.allow(request_address(request, self.proxies)):
            raise UserError(TOO_FAST, 429)
        view_request = read_view_request(self.tier.facts, await read_body(request))
        self.latest.arrived(view_request.page, view_request.seq)
        return view_request

    async def view(self, request: Request) -> Response:
        try:
            view_request = await self.checked(request)
            served = await self.answer(view_request)
        except (ValueError, Unavailable) as error:  # a UserError, the engine's refusal, or no replica to answer
            return refused(request, error)
        if served is None:
            return refused(request, UserError("A newer request from this page replaced this one.", 409))
        headers = {SERVED_BY: served.served_by}
        return Response(served.record, media_type="application/json", headers=headers)

    async def answer(self, view_request: ViewRequest) -> Served | None:
        """The record for a request, shown to the presenter's room too; None when a newer one has come."""
        room = self.room(view_request)

        def wanted() -> bool:
            return not self.latest.superseded(view_request.page, view_request.seq)

        served = await self.tier.view(view_request, room is not None, wanted)
        if served is not None and room is not None:
            room.show(served.whole, whole=True)
        return served

    async def go_on(self, request: Request) -> Response:
        try:
            view_request = await self.checked(request)
            records = self.tier.continuation(view_request)
            first = await anext(records)
        except (ValueError, Unavailable) as error:
            return refused(request, error)
        return StreamingResponse(
            self.events(first, records, self.room(view_request)),
            media_type="text/event-stream",
            headers={**STREAM_HEADERS, SERVED_BY: first.served_by},
        )

    async def events(self, first: Served, records: AsyncIterator[Served], room: Room | None):
        """Each record as a server-sent event as it comes, the same bytes to the room; closing the stream (Stop, or
        the page leaving) ends the continuation at its next token."""
        try:
            served = first
            while served is not None:
                if room is not None:
                    room.show(served.record, whole=False)
                yield b"data: " + served.record + b"\n\n"
                served = await anext(records, None)
        finally:
            await records.aclose()

    def room(self, view_request: ViewRequest) -> Room | None:
        """The room the presenter's key opens, if the request carries one."""
        return self.rooms.presented(view_request.room) if view_request.room else None
