"""What the page's requests do: show the view, choose a token (Step, a pick), take tokens back (Undo, Reset), or
continue token by token; each answers with view records."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

from ...engine import Analysis, Engine, TokenScore
from .. import guards
from ..state import current, for_prompt, new_state, with_chosen
from .record import Drawn, ViewRecord, record_of, view_record
from .requests import ViewRequest


def answer(engine: Engine, request: ViewRequest) -> ViewRecord:
    """The view after the request's action."""
    session = for_prompt(request.session, request.settings.prompt)
    if request.action in ("step", "pick"):
        session = with_choice(engine, request, session)
    elif request.action == "undo":
        session = {**session, "appended": session["appended"][:-1], "appended_langs": session["appended_langs"][:-1]}
    elif request.action == "reset":
        session = new_state(request.settings.prompt, session.get("literal", False))
    return view_record(engine, request.settings, session, seq=request.seq, drawn=request.drawn, table=request.table)


def with_choice(engine: Engine, request: ViewRequest, session: dict) -> dict:
    """The session with one more token: the most probable (Step), or the candidate picked, which must be shown."""
    settings = request.settings
    encoded = current(engine, settings.prompt, settings.lang, session, reserve=1)
    candidates = engine.analyse(encoded, settings.top_k, settings.sampling).next_token.candidates
    chosen = candidates[0].id if request.action == "step" else request.choice
    if chosen not in {c.id for c in candidates}:
        raise ValueError("That candidate is no longer on the chart; pick one of those shown.")
    return with_chosen(session, chosen, settings.fed_lang)


def continuation(engine: Engine, request: ViewRequest) -> Iterator[ViewRecord]:
    """Continue token by token, greedy or sampled: a record per token with the continuation's spans so far and the
    distribution it was drawn from, then the whole view of what came. Checks what it is asked before it yields."""
    settings, n_tokens = request.settings, request.n_tokens
    session = for_prompt(request.session, settings.prompt)
    encoded = current(engine, settings.prompt, settings.lang, session, reserve=n_tokens)
    steps = engine.generate(encoded, n_tokens, settings.sampling, top_k=settings.top_k, lang=settings.fed_lang)
    return streamed(engine, request, session, encoded, steps)


def streamed(engine: Engine, request: ViewRequest, session: dict, encoded, steps) -> Iterator[ViewRecord]:
    """The records of a running continuation (see `continuation`)."""
    settings = request.settings
    scores = list(engine.analyse(encoded, settings.top_k, settings.sampling).scores)
    start, new_ids = len(scores), []
    # What the page drew before the continuation: the settled view sends the spans from its end on.
    before = Drawn(tuple(encoded.input_ids), tuple(encoded.position_langs), start - len(session["appended"]))
    deadline, limited = time.monotonic() + guards.CONTINUATION_TIME_LIMIT, False
    for chosen in steps:
        new_ids.append(chosen.id)
        session = with_chosen(session, chosen.id, settings.fed_lang)
        entropy = chosen.distribution.entropy
        scores.append(TokenScore(chosen.id, chosen.token, chosen.prob, chosen.logprob, chosen.rank, (), entropy))
        now = engine.append(encoded, new_ids, id_langs=[settings.fed_lang] * len(new_ids))
        analysis = Analysis(scores, chosen.distribution)  # the chart shows what each token was drawn from
        yield record_of(engine, settings, session, now, analysis, seq=request.seq, spans_from=start, streaming=True)
        limited = time.monotonic() > deadline
        if limited:
            break
    settled = view_record(engine, settings, session, seq=request.seq, drawn=before, table=request.table)
    notes = [f"Stopped after {guards.CONTINUATION_TIME_LIMIT:g} seconds, the limit for one continuation."]
    yield replace(settled, notes=settled.notes + notes * limited)
