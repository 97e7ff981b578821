"""What the page shows for a sequence, as one record with named fields: the presenter's page, the followers, the
export and the tests read its JSON, and one renderer (assets/view.js) draws it."""

from __future__ import annotations

from dataclasses import dataclass, replace

import orjson

from ...engine import Analysis, Encoded, Engine
from ...model import languages
from ..coloured_text import token_spans
from ..requests import Drawn
from ..state import PageState, fed_sequence
from .table import inspector_rows

# Callers in one batch from which the status line says the server is busy: until then, answers come about as fast
# as for one person alone.
BUSY = 8


@dataclass(frozen=True)
class ViewRecord:
    """Everything the page shows for the text, its language id and the tokens chosen after it."""

    seq: int  # the request's number, echoed: an older answer never replaces a newer view
    prompt: str
    lang: str
    lang_name: str
    colour: str  # the language id's colour on the charts
    literal: bool  # <s>, </s>, <special1> typed are plain characters
    appended: list[int]  # the chosen tokens, carried by the next request
    appended_langs: list[str]  # the language id each chosen token is fed with
    ids: list[int]  # every position as fed, the start token first
    langs: list[str]  # each position's language id
    typed: int  # positions before the chosen tokens, the start token's included
    spans_from: int  # the position of spans[0]; the page keeps what it draws before it
    spans: list[str]  # each position's coloured token, as HTML
    candidates: list[dict]  # the next token's top candidates, most probable first
    entropy: float  # nats, of the next token's distribution
    reshaped: bool  # the sampling settings change the distribution: candidates carry sampling_prob
    notes: list[str]  # sentences for the status line: truncation, sampling, a crowd
    steps: list[dict]  # each chosen token: what the timeline draws
    explore: str  # the link that restores this view
    streaming: bool = False  # a continuation's token, more to come
    table: list[list] | None = None  # the tokens as the model sees them, when the page shows the table

    def to_json(self) -> bytes:
        """The record as the page reads it."""
        return orjson.dumps(self)

    def with_every_span(self, engine: Engine) -> ViewRecord:
        """The same record with the whole text's spans, for a page that draws nothing yet (a follower)."""
        if self.spans_from <= 1:
            return self
        fed = Encoded(self.ids, self.lang, False, tuple(self.langs))
        scores = engine.analyse(fed).scores  # from the prefix cache: the view was just computed
        return replace(self, spans_from=1, spans=token_spans(scores, self.typed, fed))


def view_record(
    engine: Engine, state: PageState, *, seq: int, drawn: Drawn | None = None, table: bool = False
) -> ViewRecord:
    """The record for a page state; the model runs only on what the prefix cache lacks."""
    fed = fed_sequence(engine, state)
    analysis = engine.analyse(fed, state.top_k, state.sampling)
    typed = len(fed.input_ids) - len(state.chosen)
    start = 1 if drawn is None else max(1, drawn.unchanged(fed.input_ids, fed.position_langs, typed))
    record = record_of(engine, state, fed, analysis, seq=seq, spans_from=start)
    return replace(record, table=inspector_rows(engine, fed, analysis.scores)) if table else record


def record_of(
    engine: Engine,
    state: PageState,
    fed: Encoded,
    analysis: Analysis,
    *,
    seq: int,
    spans_from: int = 1,
    streaming: bool = False,
) -> ViewRecord:
    """The record of an analysed sequence, its spans from position `spans_from` on."""
    distribution = analysis.next_token
    typed = len(fed.input_ids) - len(state.chosen)
    return ViewRecord(
        seq=seq,
        prompt=state.prompt,
        lang=state.lang,
        lang_name=languages.name(state.lang),
        colour=languages.colour(state.lang),
        literal=state.literal,
        appended=state.appended,
        appended_langs=state.appended_langs,
        ids=fed.input_ids,
        langs=fed.position_langs,
        typed=typed,
        spans_from=spans_from,
        spans=token_spans(analysis.scores, typed, fed, start=spans_from),
        candidates=[dict(vars(c)) for c in distribution.candidates],  # flat dataclasses: no asdict's deep copy
        entropy=distribution.entropy,
        reshaped=distribution.sampling.reshapes,
        notes=notes(engine, fed, analysis),
        steps=[
            {"token": s.token, "prob": s.prob, "rank": s.rank, "entropy": s.entropy} for s in analysis.scores[typed:]
        ],
        explore=state.share_query(),
        streaming=streaming,
    )


def notes(engine: Engine, fed: Encoded, analysis: Analysis) -> list[str]:
    """What the status line says beside the entropy and the positions: what was cut or reshaped, a crowd."""
    distribution, said = analysis.next_token, []
    if fed.truncated:
        said.append(f"The text was longer than {engine.max_positions} positions: only its last tokens are used.")
    if distribution.sampling.reshapes:
        said.append(f"Sampling keeps {distribution.kept_mass:.1%} of the probability, renormalised.")
    crowd = engine.scheduler.last_batch
    if crowd >= BUSY:
        said.append(
            f"Busy: {crowd} people typing at once; your chart follows your latest text as the server catches up."
        )
    return said
