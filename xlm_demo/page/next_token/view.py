"""What the page shows for a sequence: the chart, the coloured text, the token table, the status line."""

from __future__ import annotations

import gradio as gr

from ...engine import Analysis, Distribution, Encoded, Engine, TokenScore
from ..coloured_text import token_html
from ..state import share_query
from . import charts

VIEW_OUTPUTS = ("chart", "candidate list", "coloured text", "timeline", "token table", "status line", "state")


def view(
    engine: Engine,
    encoded: Encoded,
    analysis: Analysis,
    state: dict,
    *,
    inspector_open: bool,
    timeline_changed: bool,
) -> tuple:
    """Every output the page shows for the current sequence; the closed inspector and an unchanged timeline skipped."""
    distribution = analysis.next_token
    choices = [(f"{c.token}  ({c.prob:.1%})", str(c.id)) for c in distribution.candidates]
    n_typed = len(encoded.input_ids) - len(state["appended"])
    timeline = charts.timeline_figure(state["steps"]) if state["steps"] else None  # None: no timeline shown
    return (
        charts.candidates_figure(distribution),
        gr.update(choices=choices, value=None),
        token_html(analysis.scores, n_typed, encoded),
        timeline if timeline_changed else gr.skip(),
        inspector_rows(engine, encoded, analysis.scores) if inspector_open else gr.skip(),
        status_line(engine, encoded, distribution, state),
        state,
    )


def streamed_view(engine: Engine, encoded: Encoded, analysis: Analysis, state: dict) -> tuple:
    """What a streamed token changes beside the text (which takes the token itself): the chart it was drawn from
    and the status line."""
    return (
        charts.candidates_figure(analysis.next_token),
        gr.skip(),
        gr.skip(),
        gr.skip(),
        gr.skip(),
        status_line(engine, encoded, analysis.next_token, state),
        state,
    )


# Callers in one batch from which the status line says the server is busy: until then, answers come about as fast
# as for one person alone.
BUSY = 8


def status_line(engine: Engine, encoded: Encoded, distribution: Distribution, state: dict) -> str:
    """Entropy, the positions the model sees, what was cut or reshaped, and the link to this view."""
    notes = [f"Entropy **{distribution.entropy:.2f}** nats · {len(encoded.input_ids)} positions"]
    if encoded.truncated:
        notes.append(f"The text was longer than {engine.max_positions} positions: only its last tokens are used.")
    if distribution.sampling.reshapes:
        notes.append(f"Sampling keeps {distribution.kept_mass:.1%} of the probability, renormalised.")
    crowd = engine.scheduler.last_batch
    if crowd >= BUSY:
        notes.append(
            f"Busy: {crowd} people typing at once; your chart follows your latest text as the server catches up."
        )
    notes.append(f"[Link to this view]({share_query(state, encoded.lang, len(distribution.candidates))})")
    return " · ".join(notes)


INSPECTOR_HEADERS = ["position", "id", "BPE piece", "word (Moses token)", "language id", "p given prefix", "rank"]


def inspector_rows(engine: Engine, encoded: Encoded, scores: list[TokenScore]) -> list[list]:
    """One row per position: id, BPE piece, the Moses token it belongs to, language id, probability and rank."""
    pieces = [engine.tokenizer.piece(token_id) for token_id in encoded.input_ids]
    rows = zip(encoded.input_ids, pieces, encoded.position_langs, scores, strict=True)
    return [
        [
            position,
            token_id,
            piece,
            word_of(pieces, position),
            f"{lang} ({engine.lang2id[lang]})",
            "" if score.prob is None else f"{score.prob:.4f}",
            "" if score.rank is None else score.rank,
        ]
        for position, (token_id, piece, lang, score) in enumerate(rows)
    ]


def word_of(pieces: list[str], position: int) -> str:
    """The whole word a BPE piece belongs to: pieces run on until one ends in </w>."""
    ends_word = [piece.endswith("</w>") or piece.startswith("<") for piece in pieces]
    start = position
    while start > 0 and not ends_word[start - 1]:
        start -= 1
    end = position
    while end < len(pieces) - 1 and not ends_word[end]:
        end += 1
    return "".join(pieces[start : end + 1]).removesuffix("</w>")
