"""Each edge of the page tells a caller's mistake (requests.UserError, or an engine's ValueError) its own way with one
log line and no traceback: a route answers 4xx with the sentence, a Gradio event raises gr.Error. And what the events
that run the model share: their concurrency groups and the continuation's time limit."""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import gradio as gr
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from ..engine import Step

# Gradio events whose model work is sequences the engine's scheduler batches (Compare, the named /predict, /score and
# /generate): up to the server's room size wait on it at once, with the view route's requests, and each batch runs
# their new tokens together.
ROOM_GROUP = "room"
# Gradio events that hold the model alone while they run (attention, attribution, the lens, fill, fidelity, the
# padded /compare): two at a time, as the queue's default_concurrency_limit; the rest wait in the queue.
MODEL_GROUP = "model"

# A continuation holds a worker for at most this long, then keeps what came. Gradio's own `time_limit` bounds only
# `.stream()` events, not generators behind a call; the view route's continuations are no Gradio events at all. Every
# other request does bounded work (a text within the limit of requests.py, cut to the model's 512 positions).
CONTINUATION_TIME_LIMIT = 30.0  # seconds; the real model streams 256 tokens in about 25 s on 2 CPU cores

log = logging.getLogger("xlm_demo")


def told(error: ValueError) -> tuple[int, str]:
    """The HTTP status and the sentence of a caller's mistake: a UserError's own, 400 for an engine's ValueError."""
    return getattr(error, "status", 400), str(error)


def log_user_error(sentence: str, where: str) -> None:
    """A user's mistake in the server's log: one line, what and where."""
    log.info("user error in %s: %s", where, sentence)


def refused(request: Request, error: ValueError) -> PlainTextResponse:
    """A route's answer to a caller's mistake: its status and its sentence (capitalised, with its full stop), and one
    log line."""
    status, sentence = told(error)
    sentence = sentence.strip()
    sentence = sentence[:1].upper() + sentence[1:]
    sentence = sentence if sentence.endswith((".", "?", "!")) else f"{sentence}."
    log_user_error(sentence, f"{request.method} {request.url.path} ({status})")
    return PlainTextResponse(sentence, status_code=status)


@contextmanager
def user_errors(where: str = "a page event", on_page: bool = False) -> Iterator[None]:
    """A Gradio event's edge: a caller's mistake raised inside as gr.Error, one log line naming the event or endpoint
    `where`, no traceback; `on_page`, escaped (the page reads it as HTML: a sentence naming <special1> keeps it). Any
    other exception is a fault, and keeps its traceback."""
    try:
        yield
    except gr.Error as error:  # told already, by a user_errors inside this one
        raise error
    except ValueError as error:
        sentence = told(error)[1]
        log_user_error(sentence, where)
        raise gr.Error(html.escape(sentence) if on_page else sentence, print_exception=False) from None


def time_limited(steps: Iterable[Step], stopped: Callable[[str], object] = gr.Warning) -> Iterator[Step]:
    """The steps that come within CONTINUATION_TIME_LIMIT seconds; then `stopped` is told so in a sentence (a toast
    by default), and they end: no one holds a worker forever."""
    deadline = time.monotonic() + CONTINUATION_TIME_LIMIT
    for step in steps:
        yield step
        if time.monotonic() > deadline:
            stopped(f"Stopped after {CONTINUATION_TIME_LIMIT:g} seconds, the limit for one continuation.")
            return
