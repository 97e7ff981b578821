"""The presenter's side of a room: Share and Close, the link, and every view event published to the followers."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr
from starlette.routing import Route

from ..clients import TOO_FAST, TrustedProxies, request_address
from ..guards import user_error
from .rooms import Rooms
from .share import follow_link, link_html
from .stream import follow_routes


class BlocksWithRooms(gr.Blocks):
    """The page's Blocks: its rooms, the proxies whose word on a client's address it takes, and the routes served
    beside Gradio's own (the rooms' streams, the page's hot path)."""

    def __init__(self, rooms: Rooms | None = None, proxies: TrustedProxies | None = None, **options):
        super().__init__(**options)
        self.rooms = rooms or Rooms()
        self.proxies = proxies or TrustedProxies.where_served()
        self.listening = "127.0.0.1"  # the address the server listens on, once launched
        self.routes: list[Route] = follow_routes(self.rooms, self.proxies)

    def launch(self, *args, **options):
        """Blocks.launch, the app created with the page's routes first among its routes."""
        self.listening = options.get("server_name") or "127.0.0.1"
        app_kwargs = dict(options.pop("app_kwargs", None) or {})
        app_kwargs["routes"] = [*self.routes, *app_kwargs.get("routes", [])]
        return super().launch(*args, app_kwargs=app_kwargs, **options)


def shown_to_room(callback: Callable, rooms: Rooms) -> Callable:
    """Compare's event, whose last input is the room's code: its chart and summary are shown to the room too."""

    def run(*values):
        chart, summary = outputs = callback(*values[:-1])
        room = rooms.get(values[-1]) if values[-1] else None
        if room is not None:
            room.show_compare({"compare": chart, "compare_summary": summary})
        return outputs

    return run


def build_sharing(demo: gr.Blocks) -> tuple[gr.State, gr.Button]:
    """Share with the room, Close the room and the link; returns the room's code (empty while closed) and the Share
    button, whose click the page follows with its view."""
    rooms: Rooms = demo.rooms
    code = gr.State("")
    with gr.Row(elem_id="room-row"):
        share = gr.Button("Share with the room", elem_id="share-room", size="sm")
        close = gr.Button("Close the room", elem_id="close-room", size="sm", variant="stop", visible=False)
    link = gr.HTML(elem_id="room-link", visible=False)

    def open_room(request: gr.Request) -> tuple:
        client = request_address(request, demo.proxies)
        if not rooms.requests.allow(client):
            raise user_error(TOO_FAST, "Share")
        try:
            room = rooms.open(request.session_hash, client)
        except ValueError as error:
            raise user_error(str(error), "Share") from None
        hint = "They see your text, chart and chosen tokens as you type, step and continue, and cannot change them."
        link, unreachable = follow_link(request, room.code, demo.listening)
        shown = link_html(link, unreachable, hint, room.code, room.key)
        return room.code, gr.update(value=shown, visible=True), gr.update(visible=True), gr.update(visible=False)

    def close_room(request: gr.Request) -> tuple:
        rooms.close_owned_by(request.session_hash)
        return "", gr.update(value="", visible=False), gr.update(visible=False), gr.update(visible=True)

    def presenter_left(request: gr.Request) -> None:
        rooms.close_owned_by(request.session_hash)

    room_outputs = [code, link, close, share]
    # Neither runs the model: neither waits behind the events that hold it.
    quick = {"api_visibility": "private", "show_progress": "hidden", "concurrency_limit": None}
    opened = share.click(open_room, None, room_outputs, **quick)
    close.click(close_room, None, room_outputs, **quick)
    demo.unload(presenter_left)
    return code, opened
