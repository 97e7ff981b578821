"""What the "Fill the blank" section's events do, as plain functions of the inputs and the engine."""

from __future__ import annotations

import math

from ...engine import Engine, Fill
from ...engine.fill import MASK, split_words
from ...model import languages
from ..guards import user_errors
from ..requests import ModelFacts, UserError, read_state
from . import charts


def fill_view(fields, words, *, engine: Engine) -> tuple:
    """The page state's blank filled under every language id side by side, and what the left context alone ranks."""
    with user_errors("Fill", on_page=True):
        state = read_state(ModelFacts.of(engine), fields)
        if state.literal:
            raise UserError(f"Literal is on, so {MASK} is plain characters, not a blank; switch it off to fill.")
        ordered = languages.ordered(engine.lang2id)
        fills = engine.fill_languages(state.prompt, ordered, state.top_k, split_words(words))
    return charts.fill_figure(fills), "  \n".join(summary_line(engine, fill) for fill in fills.values())


NOTHING_TO_BLANK = (
    "There is no word to blank yet: type a text, then Blank a word blanks its last word (or the words you select)."
)


def blanked_view(fields, words, blanked: str, *, engine: Engine) -> tuple:
    """Blank a word's fill, of the text as the browser has just blanked it (the page state may not have caught up
    with it yet): a text without words to blank is told so."""
    with user_errors("Blank a word", on_page=True):
        state = read_state(
            ModelFacts.of(engine), {**(fields or {}), "prompt": blanked, "appended": [], "appended_langs": []}
        )
        if not state.literal and MASK not in state.prompt:
            raise UserError(NOTHING_TO_BLANK)
    return fill_view(state.fields(), words, engine=engine)


def summary_line(engine: Engine, fill: Fill) -> str:
    """The best-filled text under one id, its share, and what the left context alone said of it and of the next
    token."""
    top, name = fill.candidates[0], languages.name(fill.lang)
    before = engine.decode(fill.input_ids[: fill.blank], fill.lang)
    after = engine.tokenizer.decode(fill.input_ids[fill.blank + 1 :], fill.lang)
    sentence = " ".join(part for part in (before, f"**{top.text}**", after) if part)
    by_left = sorted(fill.candidates, key=lambda c: -c.left_logprob).index(top) + 1
    following = fill.next_token.candidates[0]
    return (
        f"**{name} id:** {sentence}  \n**{top.text}** has {top.prob:.0%} of the probability of the "
        f"{len(fill.candidates)} texts listed (of {fill.scored} scored); the left context alone ranks it "
        f"{ordinal(by_left)} of them (p = {percent(math.exp(top.left_logprob))}) "
        f"and its most probable next token is `{following.token}` ({percent(following.prob)})."
    )


def percent(p: float) -> str:
    """12%, 3.2%, 0.041%."""
    return f"{p:.0%}" if p >= 0.1 else f"{p:.1%}" if p >= 0.01 else f"{100 * p:.2g}%"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
