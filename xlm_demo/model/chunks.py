"""A text cut where XLM's tokenizing cannot see across, so that a text edited in one place tokenizes again only the
piece around the edit (the tokenizer caches each piece's ids).

A run of spaces between two letters is such a place. Every rule of Moses' punctuation normaliser and tokenizer that
reads across a space needs punctuation, a digit or a non-breaking space beside it (`) .`, ` :`, `(\\d) %`, a token
ending in `.` and the word after it, an apostrophe, `."`), the text's end rules need a dot or an apostrophe at the
end, and BPE works word by word. So a text's tokens are its pieces' tokens one after the other. Pieces end only at
some of these places, where the word after hashes to 0 mod CUT_EVERY (content-defined, as rsync cuts files): an
edit moves no cut but those beside it, and a piece holds a few words, so that a first view does not pay the
pipeline's fixed cost per word.
"""

from __future__ import annotations

import re

# Letters every rule treats as letters: ASCII and Latin-1's (Moses' IsAlpha holds them all).
LETTER = "A-Za-zÀ-ÖØ-öø-ÿ"
BETWEEN_LETTERS = re.compile(f"(?<=[{LETTER}]) +(?=([{LETTER}][^ ]*))")  # group 1: the word after the spaces
CUT_EVERY = 8  # words per piece, on average


def pieces(text: str) -> list[str]:
    """The text cut at some runs of spaces between two letters: pieces that tokenize as they do in the text."""
    found, start = [], 0
    for space in BETWEEN_LETTERS.finditer(text):
        if hash(space.group(1)) % CUT_EVERY == 0:
            found.append(text[start : space.start()])
            start = space.end()
    found.append(text[start:])
    return found
