"""What the next-token section's events do, as plain functions of the inputs and the engine (testable without a
browser)."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict

import gradio as gr

from ...engine import Analysis, Distribution, Engine, TokenScore
from ...engine.sampling import GREEDY
from ...payloads import predict_payload, step_payload
from ..coloured_text import token_spans
from ..guards import time_limited, user_errors
from ..state import PageSettings, append, current, for_prompt, new_state, with_token
from .token_stream import NO_TOKENS, streamed_tokens
from .view import VIEW_OUTPUTS, streamed_view, view

# While Continue streams, the tokens go to the page at most every TOKEN_INTERVAL (token_stream.py: each update holds
# them all, so none is lost; every update costs Gradio's server its per-event work), and the chart and status line
# at most every STREAM_INTERVAL: redrawing the chart costs the browser 20-40 ms, on the same two cores as the decoding.
TOKEN_INTERVAL = 0.05  # seconds: 20 updates a second
STREAM_INTERVAL = 0.5  # seconds


def refresh(
    settings: PageSettings, state: dict, *, inspector_open: bool = True, engine: Engine, steps_changed: bool = False
) -> tuple:
    """Everything shown for the text, language and settings; the model runs only on what the cache lacks."""
    fresh = for_prompt(state, settings.prompt)
    encoded = current(engine, settings.prompt, settings.lang, fresh)
    analysis = engine.analyse(encoded, settings.top_k, settings.sampling)
    steps_changed = steps_changed or len(fresh["steps"]) != len(state.get("steps", []))
    return view(engine, encoded, analysis, fresh, inspector_open=inspector_open, timeline_changed=steps_changed)


def next_distribution(engine: Engine, settings: PageSettings, state: dict) -> Distribution:
    """The distribution after the current sequence, with room for one more token (cached when just shown)."""
    encoded = current(engine, settings.prompt, settings.lang, state, reserve=1)
    return engine.analyse(encoded, settings.top_k, settings.sampling).next_token


def step(settings: PageSettings, state: dict, *, inspector_open: bool = True, engine: Engine) -> tuple:
    """Append the most probable next token."""
    state = for_prompt(state, settings.prompt)
    distribution = next_distribution(engine, settings, state)
    state = append(state, distribution, distribution.candidates[0].id, settings.fed_lang)
    return refresh(settings, state, inspector_open=inspector_open, engine=engine, steps_changed=True)


def pick(settings: PageSettings, state: dict, choice, *, inspector_open: bool = True, engine: Engine) -> tuple:
    """Append the candidate a person picked."""
    state = for_prompt(state, settings.prompt)
    if not choice:
        raise gr.Error("Pick one of the candidates listed.")
    state = append(state, next_distribution(engine, settings, state), int(choice), settings.fed_lang)
    return refresh(settings, state, inspector_open=inspector_open, engine=engine, steps_changed=True)


def undo(settings: PageSettings, state: dict, *, inspector_open: bool = True, engine: Engine) -> tuple:
    """Remove the last chosen token."""
    state = for_prompt(state, settings.prompt)
    state = {**state, "appended": state["appended"][:-1], "appended_langs": state["appended_langs"][:-1],
             "steps": state["steps"][:-1]}  # fmt: skip
    return refresh(settings, state, inspector_open=inspector_open, engine=engine, steps_changed=True)


def reset(settings: PageSettings, state: dict, *, inspector_open: bool = True, engine: Engine) -> tuple:
    """Forget the whole continuation, keeping the typed text."""
    state = new_state(settings.prompt, state.get("literal", False))
    return refresh(settings, state, inspector_open=inspector_open, engine=engine, steps_changed=True)


def continue_(
    settings: PageSettings, state: dict, n_tokens, *, inspector_open: bool = True, engine: Engine
) -> Iterator[tuple]:
    """Stream n tokens, greedy or sampled: the tokens to the page's text as they come, every TOKEN_INTERVAL at most,
    the chart each was drawn from every STREAM_INTERVAL at most; Stop keeps what came so far. Yields the view and the
    token stream's value."""
    state = for_prompt(state, settings.prompt)
    n_tokens = int(n_tokens)
    encoded = current(engine, settings.prompt, settings.lang, state, reserve=n_tokens)
    scores, new_ids = list(engine.analyse(encoded, settings.top_k, settings.sampling).scores), []
    n_typed, start, spans = len(encoded.input_ids) - len(state["appended"]), len(scores), []
    shown_at = sent_at = time.monotonic()
    with user_errors():
        steps = engine.generate(encoded, n_tokens, settings.sampling, top_k=settings.top_k, lang=settings.fed_lang)
    for chosen in time_limited(steps):
        new_ids.append(chosen.id)
        state = with_token(state, chosen, settings.fed_lang)
        scores.append(TokenScore(chosen.id, chosen.token, chosen.prob, chosen.logprob, chosen.rank))
        now = engine.append(encoded, new_ids, id_langs=[settings.fed_lang] * len(new_ids))
        spans += token_spans(scores, n_typed, now, start=len(scores) - 1)
        tokens = streamed_tokens(spans, start)
        if time.monotonic() - shown_at >= STREAM_INTERVAL:
            # While streaming, the chart shows the distribution each token was drawn from.
            yield (*streamed_view(engine, now, Analysis(scores, chosen.distribution), state), tokens)
            shown_at = sent_at = time.monotonic()
        elif time.monotonic() - sent_at >= TOKEN_INTERVAL:
            yield (*(gr.skip(),) * (len(VIEW_OUTPUTS) - 1), state, tokens)
            sent_at = time.monotonic()
    yield (*refresh(settings, state, inspector_open=inspector_open, engine=engine, steps_changed=True), NO_TOKENS)


def settle(settings: PageSettings, state: dict, *, inspector_open: bool = True, engine: Engine) -> tuple:
    """The whole view of what a stopped continuation kept (its stream sent the tokens alone)."""
    return refresh(settings, state, inspector_open=inspector_open, engine=engine, steps_changed=True)


def export(settings: PageSettings, state: dict, *, engine: Engine) -> dict:
    """The whole exploration as a JSON file: settings, ids, every step's distribution, the next one."""
    state = for_prompt(state, settings.prompt)
    encoded, literal = current(engine, settings.prompt, settings.lang, state), state.get("literal", False)
    record = {
        "model": engine.source,
        "prompt": settings.prompt,
        "lang": settings.lang,
        "settings": {
            "candidates_shown": settings.top_k,
            "sample": settings.sampling != GREEDY,
            "sampling": asdict(settings.sampling),
            "literal_specials": literal,
        },
        "input_ids": encoded.input_ids,
        "langs": encoded.position_langs,
        "text": engine.decode(encoded.input_ids, settings.lang, literal=literal),
        "steps": [step_payload(step) for step in state["steps"]],
        "next": predict_payload(engine.analyse(encoded, settings.top_k, settings.sampling).next_token),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="xlm-exploration-", delete=False) as file:
        json.dump(record, file, ensure_ascii=False, indent=1)
    return gr.update(value=file.name, visible=True)
