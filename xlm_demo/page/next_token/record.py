"""What the page shows for a sequence, as one record with named fields: the presenter's page, the followers, the
export and the tests read its JSON, and one renderer (assets/view.js) draws it."""

from __future__ import annotations

from dataclasses import dataclass, replace

import orjson

from ...engine import Analysis, Encoded, Engine
from ...model import languages
from ..coloured_text import token_spans
from ..state import PageSettings, current, share_query
from .table import inspector_rows

# Callers in one batch from which the status line says the server is busy: until then, answers come about as fast
# as for one person alone.
BUSY = 8


@dataclass(frozen=True)
class Drawn:
    """What a page has on screen: each position's id and language id, and how many positions were typed."""

    ids: tuple[int, ...]
    langs: tuple[str, ...]
    typed: int

    def unchanged(self, ids: list[int], langs: list[str], typed: int) -> int:
        """How many leading positions would be drawn as they are (each span depends on the positions up to it)."""
        same = 0
        for drawn_id, drawn_lang, token_id, lang in zip(self.ids, self.langs, ids, langs, strict=False):
            if drawn_id != token_id or drawn_lang != lang:
                break
            same += 1
        return same if self.typed == typed else min(same, self.typed, typed)  # chosen tokens are drawn apart


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
        encoded = Encoded(self.ids, self.lang, False, tuple(self.langs))
        scores = engine.analyse(encoded).scores  # from the prefix cache: the view was just computed
        return replace(self, spans_from=1, spans=token_spans(scores, self.typed, encoded))


def view_record(
    engine: Engine,
    settings: PageSettings,
    session: dict,
    *,
    seq: int,
    drawn: Drawn | None = None,
    table: bool = False,
) -> ViewRecord:
    """The record for a session's text and chosen tokens; the model runs only on what the prefix cache lacks."""
    encoded = current(engine, settings.prompt, settings.lang, session)
    analysis = engine.analyse(encoded, settings.top_k, settings.sampling)
    typed = len(encoded.input_ids) - len(session["appended"])
    start = 1 if drawn is None else max(1, drawn.unchanged(encoded.input_ids, encoded.position_langs, typed))
    record = record_of(engine, settings, session, encoded, analysis, seq=seq, spans_from=start)
    return replace(record, table=inspector_rows(engine, encoded, analysis.scores)) if table else record


def record_of(
    engine: Engine,
    settings: PageSettings,
    session: dict,
    encoded: Encoded,
    analysis: Analysis,
    *,
    seq: int,
    spans_from: int = 1,
    streaming: bool = False,
) -> ViewRecord:
    """The record of an analysed sequence, its spans from position `spans_from` on."""
    distribution = analysis.next_token
    typed = len(encoded.input_ids) - len(session["appended"])
    return ViewRecord(
        seq=seq,
        prompt=settings.prompt,
        lang=settings.lang,
        lang_name=languages.name(settings.lang),
        colour=languages.colour(settings.lang),
        literal=session.get("literal", False),
        appended=list(session["appended"]),
        appended_langs=list(session["appended_langs"]),
        ids=encoded.input_ids,
        langs=encoded.position_langs,
        typed=typed,
        spans_from=spans_from,
        spans=token_spans(analysis.scores, typed, encoded, start=spans_from),
        candidates=[dict(vars(c)) for c in distribution.candidates],  # flat dataclasses: no asdict's deep copy
        entropy=distribution.entropy,
        reshaped=distribution.sampling.reshapes,
        notes=notes(engine, encoded, analysis),
        steps=[
            {"token": s.token, "prob": s.prob, "rank": s.rank, "entropy": s.entropy} for s in analysis.scores[typed:]
        ],
        explore=share_query(session, settings.lang, settings.top_k),
        streaming=streaming,
    )


def notes(engine: Engine, encoded: Encoded, analysis: Analysis) -> list[str]:
    """What the status line says beside the entropy and the positions: what was cut or reshaped, a crowd."""
    distribution, said = analysis.next_token, []
    if encoded.truncated:
        said.append(f"The text was longer than {engine.max_positions} positions: only its last tokens are used.")
    if distribution.sampling.reshapes:
        said.append(f"Sampling keeps {distribution.kept_mass:.1%} of the probability, renormalised.")
    crowd = engine.scheduler.last_batch
    if crowd >= BUSY:
        said.append(
            f"Busy: {crowd} people typing at once; your chart follows your latest text as the server catches up."
        )
    return said
