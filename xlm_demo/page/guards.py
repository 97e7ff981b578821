"""What every event that runs the model shares: limits on the text and on time, errors as one sentence."""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import gradio as gr

from ..engine import Step

# Events whose model work is sessions the engine's scheduler batches (keystrokes, Step, pick, Undo, Continue,
# Compare, /predict, /score, /generate): up to the server's room size wait on it at once, and each batch runs their
# new tokens together.
ROOM_GROUP = "room"
# Events that hold the model alone while they run (attention, attribution, the lens, fidelity, the padded /compare):
# two at a time, as the queue's default_concurrency_limit; the rest wait in the queue.
MODEL_GROUP = "model"

MAX_PROMPT_CHARS = 20_000

log = logging.getLogger("xlm_demo")

# A streamed continuation holds a worker for at most this long, then keeps what came. Gradio's own `time_limit`
# bounds only `.stream()` events, not generators behind a click or an API call. Every other event does bounded
# work (at most MAX_PROMPT_CHARS characters, cut to the model's 512 positions), so it needs no limit of its own.
CONTINUATION_TIME_LIMIT = 30.0  # seconds; the real model streams 256 tokens in about 25 s on 2 CPU cores


def checked_prompt(prompt: str | None, on_page: bool = True) -> str:
    """The typed text, if within the server's limit (a page is told it keeps the text)."""
    prompt = prompt or ""
    if len(prompt) > MAX_PROMPT_CHARS:
        kept = " Nothing was lost." if on_page else ""
        raise ValueError(f"The text is {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}.{kept}")
    return prompt


def log_user_error(sentence: str, where: str) -> None:
    """A user's mistake in the server's log: one line, what and where."""
    log.info("user error in %s: %s", where, sentence)


def user_error(sentence: str, where: str, on_page: bool = False) -> gr.Error:
    """The gr.Error that tells a caller of their mistake (escaped `on_page`, where the page reads it as HTML): the
    server logs one line, what and where, and no traceback; a real fault, any other exception, keeps its traceback."""
    log_user_error(sentence, where)
    return gr.Error(html.escape(sentence) if on_page else sentence, print_exception=False)


@contextmanager
def user_errors(where: str = "a page event", on_page: bool = False) -> Iterator[None]:
    """The engine's one-sentence ValueErrors told to the page, or to an API caller, as gr.Error, `where` naming the
    event or endpoint in the log; `on_page`, escaped (a sentence naming <special1> keeps it)."""
    try:
        yield
    except gr.Error as error:  # worded for its reader already; logged already if told by user_error
        if not error.print_exception:
            raise
        raise user_error(error.message, where) from None
    except ValueError as error:
        raise user_error(str(error), where, on_page) from None


def time_limited(steps: Iterable[Step]) -> Iterator[Step]:
    """The steps that come within CONTINUATION_TIME_LIMIT seconds, then a warning: no one holds a worker forever."""
    deadline = time.monotonic() + CONTINUATION_TIME_LIMIT
    for step in steps:
        yield step
        if time.monotonic() > deadline:
            gr.Warning(f"Stopped after {CONTINUATION_TIME_LIMIT:g} seconds, the limit for one continuation.")
            return
