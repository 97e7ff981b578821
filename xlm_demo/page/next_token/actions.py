"""What the page's requests do: show the view, choose a token (Step, a pick), take tokens back (Undo, Reset), or
continue token by token; each answers with view records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from ...engine import Analysis, Encoded, Engine, Step, TokenScore
from ..guards import time_limited
from ..requests import Drawn, UserError, ViewRequest
from ..state import PageState, fed_sequence
from .record import ViewRecord, record_of, view_record


def answer(engine: Engine, request: ViewRequest) -> ViewRecord:
    """The view after the request's action."""
    state = request.state
    if request.action in ("step", "pick"):
        state = with_choice(engine, request)
    elif request.action == "undo":
        state = state.undone()
    elif request.action == "reset":
        state = state.reset()
    return view_record(engine, state, seq=request.seq, drawn=request.drawn, table=request.table)


def with_choice(engine: Engine, request: ViewRequest) -> PageState:
    """The state with one more token: the most probable (Step), or the candidate picked, which must be shown."""
    state = request.state
    analysis = engine.analyse(fed_sequence(engine, state, reserve=1), state.top_k, state.sampling)
    candidates = analysis.next_token.candidates
    chosen = candidates[0].id if request.action == "step" else request.choice
    if chosen not in {c.id for c in candidates}:
        raise UserError("That candidate is no longer on the chart; pick one of those shown.")
    return state.with_chosen(chosen)


def continuation(engine: Engine, request: ViewRequest) -> Iterator[ViewRecord]:
    """Continue token by token, greedy or sampled: a record per token with the continuation's spans so far and the
    distribution it was drawn from, then the whole view of what came. Checks what it is asked before it yields."""
    state, n_tokens = request.state, request.n_tokens
    start = fed_sequence(engine, state, reserve=n_tokens)
    steps = engine.generate(start, n_tokens, state.sampling, top_k=state.top_k, lang=state.fed_lang)
    return streamed(engine, request, start, steps)


def streamed(engine: Engine, request: ViewRequest, start: Encoded, steps: Iterator[Step]) -> Iterator[ViewRecord]:
    """The records of a running continuation (see `continuation`), within the continuation's time limit."""
    state = request.state
    scores = list(engine.analyse(start, state.top_k, state.sampling).scores)
    typed, new_ids, stopped = len(scores), [], []
    # What the page drew before the continuation: the settled view sends the spans from its end on.
    before = Drawn(tuple(start.input_ids), tuple(start.position_langs), typed - len(state.chosen))
    for chosen in time_limited(steps, stopped.append):
        new_ids.append(chosen.id)
        state = state.with_chosen(chosen.id)
        entropy = chosen.distribution.entropy
        scores.append(TokenScore(chosen.id, chosen.token, chosen.prob, chosen.logprob, chosen.rank, (), entropy))
        now = engine.append(start, new_ids, id_langs=[state.fed_lang] * len(new_ids))
        analysis = Analysis(scores, chosen.distribution)  # the chart shows what each token was drawn from
        yield record_of(engine, state, now, analysis, seq=request.seq, spans_from=typed, streaming=True)
    settled = view_record(engine, state, seq=request.seq, drawn=before, table=request.table)
    yield replace(settled, notes=settled.notes + stopped)
