"""The text token by token, coloured by how expected each token was (GLTR's rank buckets)."""

from __future__ import annotations

import html

from ..engine import Encoded, TokenScore
from ..model.tokenizer import N_SPECIAL

RANK_BUCKETS = ((1, "r1"), (10, "r10"), (100, "r100"), (1000, "r1000"))  # GLTR-style colour classes


def token_html(scores: list[TokenScore], n_typed: int, encoded: Encoded) -> str:
    """The text token by token, coloured by rank given its prefix; hover shows what was expected instead. A token
    fed with another language id than the text's is marked with it."""
    spans = token_spans(scores, n_typed, encoded)
    legend = (
        '<div class="legend"><span class="tok r1">rank 1</span><span class="tok r10">top 10</span>'
        '<span class="tok r100">top 100</span><span class="tok r1000">top 1000</span>'
        '<span class="tok rlow">rarer</span><span class="tok new">chosen here</span></div>'
    )
    return f'<div class="tokens">{"".join(spans) or "<em>(empty: the start token alone)</em>"}</div>{legend}'


def token_spans(scores: list[TokenScore], n_typed: int, encoded: Encoded, start: int = 1) -> list[str]:
    """Each token's coloured span from position `start` on (the start token, position 0, is never shown)."""
    spans = []
    langs = encoded.position_langs
    for position, score in enumerate(scores[start:], start=start):
        bucket = next((name for limit, name in RANK_BUCKETS if score.rank <= limit), "rlow")
        expected = ", ".join(f"{token} {prob:.0%}" for token, prob in score.expected)
        tip = f"id {score.id} · p = {score.prob:.3f} · rank {score.rank} · expected: {expected} · "
        tip += f"language id {langs[position]}"
        new = " new" if position >= n_typed else ""
        other = langs[position] != encoded.lang
        new += " other-lang" if other else ""
        data = f' data-lang="{html.escape(langs[position])}"' if other else ""
        text = html.escape(score.token.removesuffix("@@"))
        if score.id < N_SPECIAL:  # a special token: itself, with its id
            new, text = f"{new} special", f"{text}<sub>{score.id}</sub>"
        gap = "" if score.token.endswith("@@") else " "  # pieces of one word stay together, as a word
        attributes = f'class="tok {bucket}{new}"{data} title="{html.escape(tip)}"'
        spans.append(f"<span {attributes}>{text}</span>{gap}")
    return spans
