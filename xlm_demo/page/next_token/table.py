"""The tokens as the model sees them: one row per position, for the page's table."""

from __future__ import annotations

from ...engine import Encoded, Engine, TokenScore

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
