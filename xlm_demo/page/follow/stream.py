"""The routes a room's streams take beside Gradio's own: followers' views, and the presenter's presence."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from ..clients import TOO_FAST, TrustedProxies, request_address
from .rooms import Rooms

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy holds the events back
NO_ROOM = "No open room has this code: the presenter closed it, or the link is wrong."


class HeldStream(StreamingResponse):
    """Server-sent events that call `release` when the stream ends, however it ends."""

    def __init__(self, content, release: Callable[[], None]):
        super().__init__(content, media_type="text/event-stream", headers=STREAM_HEADERS)
        self.release = release

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()


def follow_routes(rooms: Rooms, proxies: TrustedProxies) -> list[Route]:
    """GET room/{code}/events: the room's view now and at each change, until it closes (404 for no such room).
    GET room/{code}/presence?key=KEY: held open by the presenter's page, which keeps the room alive (404 for a
    wrong code or key). Too many requests or streams from one address: 429; the server's streams all taken: 503."""

    async def events(request):
        client = request_address(request, proxies)
        if not rooms.requests.allow(client):
            return PlainTextResponse(TOO_FAST, 429)
        room = rooms.get(request.path_params["code"])
        if room is None:
            return PlainTextResponse(NO_ROOM, 404)
        refusal = rooms.followers.take(client)
        if refusal is not None:
            return PlainTextResponse(refusal.sentence, refusal.status)
        return HeldStream(room.messages(), lambda: rooms.followers.give_back(client))

    async def presence(request):
        if not rooms.requests.allow(request_address(request, proxies)):
            return PlainTextResponse(TOO_FAST, 429)
        room = rooms.presented(request.query_params.get("key", ""))
        if room is None or room.code != request.path_params["code"]:
            return PlainTextResponse("No open room has this code and presenter's key.", 404)
        room.arrive()
        return HeldStream(room.presence(), room.leave)

    return [
        Route("/room/{code}/events", events, methods=["GET"]),
        Route("/room/{code}/presence", presence, methods=["GET"]),
    ]
