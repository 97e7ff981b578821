"""What every event that runs the model shares: limits on the text and on time, errors as one sentence."""

from __future__ import annotations

import html
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

# A streamed continuation holds a worker for at most this long, then keeps what came. Gradio's own `time_limit`
# bounds only `.stream()` events, not generators behind a click or an API call. Every other event does bounded
# work (at most MAX_PROMPT_CHARS characters, cut to the model's 512 positions), so it needs no limit of its own.
CONTINUATION_TIME_LIMIT = 30.0  # seconds; the real model streams 256 tokens in about 25 s on 2 CPU cores


def checked_prompt(prompt: str | None) -> str:
    """The typed text, if within the server's limit."""
    prompt = prompt or ""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise gr.Error(f"The text is {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}. Nothing was lost.")
    return prompt


@contextmanager
def user_errors(on_page: bool = False) -> Iterator[None]:
    """Show the engine's one-sentence ValueErrors on the page (or to an API caller) as gr.Error; `on_page`, where
    the page reads the message as HTML, escaped (a sentence naming <special1> keeps it)."""
    try:
        yield
    except ValueError as error:
        raise gr.Error(html.escape(str(error)) if on_page else str(error)) from error


def time_limited(steps: Iterable[Step]) -> Iterator[Step]:
    """The steps that come within CONTINUATION_TIME_LIMIT seconds, then a warning: no one holds a worker forever."""
    deadline = time.monotonic() + CONTINUATION_TIME_LIMIT
    for step in steps:
        yield step
        if time.monotonic() > deadline:
            gr.Warning(f"Stopped after {CONTINUATION_TIME_LIMIT:g} seconds, the limit for one continuation.")
            return
