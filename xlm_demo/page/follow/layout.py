"""The presenter's side of a room: Share and Close, the link, and every view event published to the followers."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import gradio as gr

from ...model import languages
from ..clients import TOO_FAST, request_address
from ..guards import user_error
from ..state import share_query
from .rooms import Rooms
from .share import follow_link, link_html
from .stream import follow_routes

# What followers see of the page's view (layout's `view`, in its order): the chart, the coloured text, the timeline.
SHOWN = ("chart", None, "output", "timeline", None, None, "state")


class BlocksWithRooms(gr.Blocks):
    """The page's Blocks: its rooms, and their follow route served beside Gradio's own."""

    def __init__(self, rooms: Rooms | None = None, **options):
        super().__init__(**options)
        self.rooms = rooms or Rooms()

    def launch(self, *args, **options):
        """Blocks.launch, the app created with the rooms' route first among its routes."""
        app_kwargs = dict(options.pop("app_kwargs", None) or {})
        app_kwargs["routes"] = [*follow_routes(self.rooms), *app_kwargs.get("routes", [])]
        return super().launch(*args, app_kwargs=app_kwargs, **options)


def skipped(value) -> bool:
    """An output the event left as it was (gr.skip())."""
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def followed(controls: tuple, outputs: tuple) -> dict:
    """What of a view followers are sent: the text, its language id, what the view changed, and the link that
    starts a session of one's own from here."""
    prompt, lang, top_k = controls[:3]
    shown = outputs[: len(SHOWN)]  # Continue's streamed tokens come after the view; followers get its views
    changes = {name: value for name, value in zip(SHOWN, shown, strict=True) if name and not skipped(value)}
    state = changes.pop("state")
    explore = share_query(state, lang, top_k)
    return {**changes, "prompt": prompt, "lang": lang, "lang_name": languages.name(lang), "explore": explore}


def compared(_values: tuple, outputs: tuple) -> dict:
    """What followers are sent of Compare: its chart and its summary."""
    chart, summary = outputs
    return {"compare": chart, "compare_summary": summary}


def broadcast(callback: Callable, rooms: Rooms, changes: Callable = followed) -> Callable:
    """A page event (function or generator) whose last input is the room's code: what it shows, as `changes` of
    its inputs and outputs, is also published to the room, once, whatever the number of followers."""

    def publish(values: tuple, outputs: tuple) -> None:
        room = rooms.get(values[-1]) if values[-1] else None
        if room is not None:
            room.publish(changes(values, outputs))

    if inspect.isgeneratorfunction(callback):

        def streamed(*values):
            for outputs in callback(*values[:-1]):
                publish(values, outputs)
                yield outputs

        return streamed

    def run(*values):
        outputs = callback(*values[:-1])
        publish(values, outputs)
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
        client = request_address(request)
        if not rooms.requests.allow(client):
            raise user_error(TOO_FAST, "Share")
        try:
            room = rooms.open(request.session_hash, client)
        except ValueError as error:
            raise user_error(str(error), "Share") from None
        hint = "They see your text, chart and chosen tokens as you type, step and continue, and cannot change them."
        shown = link_html(follow_link(request, room.code), hint, room.code, room.key)
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
