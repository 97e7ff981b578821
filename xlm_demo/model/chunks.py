"""A text cut where XLM's tokenizing cannot see across, so that a text edited in one place tokenizes again only the
piece around the edit (the tokenizer caches each piece's ids).

A run of spaces between two letters is such a place. Every rule of Moses' punctuation normaliser and tokenizer that
reads across a space needs punctuation, a digit or a non-breaking space beside it (`) .`, ` :`, `(\\d) %`, a token
ending in `.` and the word after it, an apostrophe, `."`), the text's end rules need a dot or an apostrophe at the
end, and BPE works word by word. So a text's tokens are its pieces' tokens one after the other. Pieces end only at
some of these places, where the word after has a length that is a multiple of CUT_EVERY (content-defined, as rsync
cuts files): an edit moves no cut but those beside it, and a piece holds a few words, so that a first view does not
pay the pipeline's fixed cost per word.
"""

from __future__ import annotations

import re

# Letters every rule treats as letters: ASCII and Latin-1's (Moses' IsAlpha holds them all).
LETTER = "A-Za-zÀ-ÖØ-öø-ÿ"
CUT_EVERY = 4  # pieces end before words whose length is a multiple of this: a few words per piece


def cuts(every: int) -> re.Pattern:
    """Runs of spaces between two letters where the word after them (up to the next space) has a length that is a
    multiple of `every`."""
    word = f"[{LETTER}][^ ]{{{every - 1}}}(?:[^ ]{{{every}}})*(?: |$)"
    return re.compile(f"(?<=[{LETTER}]) +(?={word})")


CUTS = cuts(CUT_EVERY)


def pieces(text: str) -> list[str]:
    """The text cut at some runs of spaces between two letters: pieces that tokenize as they do in the text."""
    return CUTS.split(text)
