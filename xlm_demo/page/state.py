"""A session's state on the page: the typed text, the tokens chosen after it, the controls' settings, the URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote_plus

import gradio as gr

from ..engine import Encoded, Engine
from ..engine.sampling import GREEDY, SamplingParams
from ..model import languages
from .guards import MAX_PROMPT_CHARS, checked_prompt, user_errors

DEFAULT_PROMPT = "The weather in Berlin is"


def new_state(prompt: str = DEFAULT_PROMPT, literal: bool = False) -> dict:
    """A session's continuation: ids chosen after the typed text, the steps that chose them, how specials read."""
    return {"prompt": prompt, "appended": [], "appended_langs": [], "literal": literal}


@dataclass(frozen=True)
class PageSettings:
    """What the page's controls say: the text, its language id, how many candidates, and how to choose."""

    prompt: str
    lang: str
    top_k: int
    sampling: SamplingParams
    continue_lang: str = ""  # the language id chosen tokens are fed with; empty: the text's

    @classmethod
    def read(
        cls, prompt, lang, top_k, sample, temperature, sample_top_k, top_p, seed, continue_lang=""
    ) -> PageSettings:
        """The settings from the controls' values, in this order, checked."""
        sampling = sampling_params(sample, temperature, sample_top_k, top_p, seed)
        return cls(prompt or "", lang, int(top_k), sampling, continue_lang or "")

    @property
    def fed_lang(self) -> str:
        """The language id the next chosen token is fed with."""
        return self.continue_lang or self.lang


def for_prompt(state: dict | None, prompt: str) -> dict:
    """The state if it belongs to this text; a continuation of another text starts again."""
    state = state or {}
    return state if state.get("prompt") == prompt else new_state(prompt, state.get("literal", False))


def from_url(request: gr.Request, *, engine: Engine) -> tuple:
    """Text, language, candidate count and continuation from the page's URL (?prompt=…&lang=de&top_k=…&ids=…),
    each chosen token with its language id (&langs=de,de,…; the text's where absent)."""
    params = request.query_params if request else {}
    prompt = params.get("prompt", DEFAULT_PROMPT)[:MAX_PROMPT_CHARS]
    lang = params.get("lang", "")
    lang = lang if lang in engine.lang2id else languages.default(engine.lang2id)
    top_k = min(50, max(5, int(params["top_k"]))) if params.get("top_k", "").isdigit() else 10
    vocab_size = engine.model.config.vocab_size
    ids = [int(i) for i in params.get("ids", "").split(",") if i.isdigit() and int(i) < vocab_size]
    ids = ids[: engine.max_positions]
    given = [code if code in engine.lang2id else lang for code in params.get("langs", "").split(",") if code]
    langs = (given + [lang] * len(ids))[: len(ids)]
    literal = params.get("literal_specials") == "1"
    return prompt, lang, top_k, literal, {**new_state(prompt, literal), "appended": ids, "appended_langs": langs}


class Quoted(dict):
    """str.translate's table quoting each character as quote_plus does, filled as characters are seen: quote_plus
    quotes character by character, so a text quoted this way is quote_plus's, without its per-byte Python loop."""

    def __missing__(self, code: int) -> str:
        self[code] = quote_plus(chr(code))
        return self[code]


QUOTED = Quoted()


def share_query(state: dict, lang: str, top_k: int) -> str:
    """A relative URL that restores the text, language, candidate count and continuation (as urlencode writes it)."""
    params = {"prompt": state["prompt"], "lang": lang, "top_k": top_k}
    if state.get("literal"):
        params["literal_specials"] = 1
    if state["appended"]:
        params["ids"] = ",".join(map(str, state["appended"]))
    if any(code != lang for code in state["appended_langs"]):
        params["langs"] = ",".join(state["appended_langs"])
    return "?" + "&".join(f"{name}={str(value).translate(QUOTED)}" for name, value in params.items())


def sampling_params(sample: bool, temperature: float, top_k: float, top_p: float, seed: float | None) -> SamplingParams:
    """The page's sampling controls, checked; greedy unless sampling is switched on."""
    if not sample:
        return GREEDY
    with user_errors():
        return SamplingParams(
            temperature=float(temperature),
            top_k=int(top_k),
            top_p=float(top_p),
            seed=None if seed is None else int(seed),
        )


def current(engine: Engine, prompt: str, lang: str, state: dict, reserve: int = 0) -> Encoded:
    """What the model is fed: the start token, the typed text's tokens, then the chosen continuation."""
    with user_errors():
        encoded = engine.encode(checked_prompt(prompt), lang, literal=state.get("literal", False))
        return engine.append(encoded, state["appended"], reserve=reserve, id_langs=state["appended_langs"])


def with_chosen(state: dict, token_id: int, lang: str) -> dict:
    """The state with one more chosen token, fed with the language id `lang`."""
    return {**state, "appended": [*state["appended"], token_id], "appended_langs": [*state["appended_langs"], lang]}
