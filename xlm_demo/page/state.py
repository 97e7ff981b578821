"""The page's state: what a view depends on, whoever sends it (the page's requests, its sections, a share link).
requests.py reads and checks it; this module only holds it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from urllib.parse import quote_plus

from ..engine import Encoded, Engine
from ..engine.sampling import GREEDY, SamplingParams

DEFAULT_PROMPT = "The weather in Berlin is"


@dataclass(frozen=True)
class Chosen:
    """A token chosen after the text (Step, a pick, Continue) and the language id it is fed with."""

    id: int
    lang: str


@dataclass(frozen=True)
class PageState:
    """Everything a view depends on: the typed text and its language id, how many candidates are listed, how the
    next token is chosen, how typed specials read, and the tokens chosen after the text."""

    prompt: str
    lang: str
    top_k: int = 10  # candidates listed
    sampling: SamplingParams = GREEDY
    literal: bool = False  # <s>, </s>, <special1> typed are plain characters
    chosen: tuple[Chosen, ...] = ()
    continue_lang: str = ""  # the language id the next chosen token is fed with; empty: the text's

    @property
    def fed_lang(self) -> str:
        """The language id the next chosen token is fed with."""
        return self.continue_lang or self.lang

    @property
    def appended(self) -> list[int]:
        """The chosen tokens' ids, as the page sends them back."""
        return [token.id for token in self.chosen]

    @property
    def appended_langs(self) -> list[str]:
        """The language id each chosen token is fed with, as the page sends them back."""
        return [token.lang for token in self.chosen]

    def with_chosen(self, token_id: int) -> PageState:
        """The state with one more chosen token, fed with `fed_lang`."""
        return replace(self, chosen=(*self.chosen, Chosen(token_id, self.fed_lang)))

    def undone(self) -> PageState:
        """The state without its last chosen token."""
        return replace(self, chosen=self.chosen[:-1])

    def reset(self) -> PageState:
        """The typed text alone."""
        return replace(self, chosen=())

    def fields(self) -> dict:
        """The state in the view route's fields, as the page sends it (requests.read_state reads it back)."""
        sampling = {"sample": self.sampling != GREEDY, **asdict(self.sampling)}
        return {"prompt": self.prompt, "lang": self.lang, "top_k": self.top_k, "sampling": sampling,
                "literal": self.literal, "continue_lang": self.continue_lang, "appended": self.appended,
                "appended_langs": self.appended_langs}  # fmt: skip

    def share_query(self) -> str:
        """A relative URL that restores the text, language, candidate count, literal setting and chosen tokens (as
        urlencode writes it)."""
        params = {"prompt": self.prompt, "lang": self.lang, "top_k": self.top_k}
        if self.literal:
            params["literal_specials"] = 1
        if self.chosen:
            params["ids"] = ",".join(map(str, self.appended))
        if any(lang != self.lang for lang in self.appended_langs):
            params["langs"] = ",".join(self.appended_langs)
        return "?" + "&".join(f"{name}={str(value).translate(QUOTED)}" for name, value in params.items())


class Quoted(dict):
    """str.translate's table quoting each character as quote_plus does, filled as characters are seen: quote_plus
    quotes character by character, so a text quoted this way is quote_plus's, without its per-byte Python loop."""

    def __missing__(self, code: int) -> str:
        self[code] = quote_plus(chr(code))
        return self[code]


QUOTED = Quoted()


def fed_sequence(engine: Engine, state: PageState, reserve: int = 0) -> Encoded:
    """What the model is fed: the start token, the typed text's tokens, then the chosen ones, each under its id."""
    typed = engine.encode(state.prompt, state.lang, literal=state.literal)
    return engine.append(typed, state.appended, reserve=reserve, id_langs=state.appended_langs)
