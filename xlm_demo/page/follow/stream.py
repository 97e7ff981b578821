"""The route followers listen to: a room's views as server-sent events, beside Gradio's own routes."""

from __future__ import annotations

from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from .rooms import Rooms

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy holds the events back


def follow_routes(rooms: Rooms) -> list[Route]:
    """GET room/{code}/events: the room's view now and at each change, until it closes; 404 for no such room."""

    async def events(request):
        room = rooms.get(request.path_params["code"])
        if room is None:
            return PlainTextResponse("No open room has this code: the presenter closed it, or the link is wrong.", 404)
        return StreamingResponse(room.messages(), media_type="text/event-stream", headers=STREAM_HEADERS)

    return [Route("/room/{code}/events", events, methods=["GET"])]
