"""What the page's hot route is sent: the whole view's inputs in every request (what a share link carries), checked,
so that any worker can answer it and a restart loses nothing."""

from __future__ import annotations

from dataclasses import dataclass

from ...engine import Engine
from ...engine.sampling import GREEDY, SamplingParams
from ..guards import MAX_PROMPT_CHARS
from ..state import PageSettings
from .record import Drawn

ACTIONS = ("show", "step", "pick", "undo", "reset", "continue")
MAX_CANDIDATES = 50  # the page's slider
MAX_CONTINUE = 64  # tokens per Continue, as the page's slider


@dataclass(frozen=True)
class ModelFacts:
    """What checking a request needs to know of the model, without its weights."""

    lang2id: dict[str, int]
    vocab_size: int
    max_positions: int

    @classmethod
    def of(cls, engine: Engine) -> ModelFacts:
        return cls(dict(engine.lang2id), engine.model.config.vocab_size, engine.max_positions)


@dataclass(frozen=True)
class ViewRequest:
    """One request of a page: what to do, and everything the view depends on."""

    seq: int
    page: str  # the page's own id: its older requests are dropped when a newer one comes
    action: str
    settings: PageSettings
    session: dict  # the text, the chosen tokens and their language ids, how specials read (page/state.py)
    choice: int | None  # the candidate a person picked
    n_tokens: int  # how many tokens Continue adds
    drawn: Drawn | None  # what the page draws now: unchanged spans are not sent again
    table: bool  # the page shows the tokens' table
    room: str  # the presenter's key of the room the view is shown to, or empty


def read_request(body: object, model: ModelFacts) -> ViewRequest:
    """The request in a JSON body, checked; ValueError with one sentence for anything a page would not send."""
    if not isinstance(body, dict):
        raise ValueError("The request must be a JSON object.")
    prompt = field(body, "prompt", str, "")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"The text is {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}.")
    lang = known_lang(model, field(body, "lang", str, ""))
    top_k = field(body, "top_k", int, 10)
    if not 1 <= top_k <= MAX_CANDIDATES:
        raise ValueError(f"The number of candidates must be between 1 and {MAX_CANDIDATES}; it was {top_k}.")
    action = field(body, "action", str, "show")
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}; one of {', '.join(ACTIONS)}.")
    n_tokens = field(body, "n_tokens", int, 12)
    if not 1 <= n_tokens <= MAX_CONTINUE:
        raise ValueError(f"Continue adds between 1 and {MAX_CONTINUE} tokens; {n_tokens} were asked.")
    continue_lang = field(body, "continue_lang", str, "")
    continue_lang = continue_lang and known_lang(model, continue_lang)  # empty: the text's
    settings = PageSettings(prompt, lang, top_k, read_sampling(body), continue_lang)
    appended = token_ids(model, field(body, "appended", list, []))
    appended_langs = [known_lang(model, code) for code in strings(field(body, "appended_langs", list, []))]
    if len(appended_langs) != len(appended):
        raise ValueError("Each chosen token needs its language id: appended and appended_langs differ in length.")
    literal = field(body, "literal", bool, False)
    session = {"prompt": prompt, "appended": appended, "appended_langs": appended_langs, "literal": literal}
    choice = field(body, "choice", int, None)
    return ViewRequest(
        seq=field(body, "seq", int, 0),
        page=field(body, "page", str, "")[:64],
        action=action,
        settings=settings,
        session=session,
        choice=choice,
        n_tokens=n_tokens,
        drawn=read_drawn(model, body.get("drawn")),
        table=field(body, "table", bool, False),
        room=field(body, "room", str, ""),
    )


def field(body: dict, name: str, kind: type, default):
    """One field of the body, of the kind a page sends (absent or null: the default)."""
    value = body.get(name)
    if value is None:
        return default
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"The field {name!r} must be {KIND_NAMES[kind]}.")
    return value


KIND_NAMES = {str: "a string", int: "a whole number", bool: "true or false", list: "a list", dict: "an object"}


def known_lang(model: ModelFacts, code: str) -> str:
    """A language id of the checkpoint's."""
    if code not in model.lang2id:
        raise ValueError(f"Unknown language id {code!r}; this model has {', '.join(model.lang2id)}.")
    return code


def token_ids(model: ModelFacts, values: list) -> list[int]:
    """Token ids in the vocabulary, no more than the model's positions."""
    vocab_size = model.vocab_size
    if len(values) > model.max_positions:
        raise ValueError(f"{len(values)} chosen tokens do not fit in the model's {model.max_positions} positions.")
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vocab_size for i in values):
        raise ValueError(f"Token ids must be whole numbers from 0 to {vocab_size - 1}.")
    return values


def strings(values: list) -> list[str]:
    """A list of strings, as sent."""
    if not set(map(type, values)) <= {str}:  # in C: a text's every position is sent
        raise ValueError("Language ids must be strings.")
    return values


def read_sampling(body: dict) -> SamplingParams:
    """The sampling settings: greedy unless `sample` is on."""
    sampling = field(body, "sampling", dict, {})
    if not field(sampling, "sample", bool, False):
        return GREEDY
    return SamplingParams(
        temperature=number(sampling, "temperature", 1.0),
        top_k=field(sampling, "top_k", int, 0),
        top_p=number(sampling, "top_p", 1.0),
        seed=field(sampling, "seed", int, None),
    )


def number(body: dict, name: str, default: float) -> float:
    """A numeric field, whole or not."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"The field {name!r} must be a number.")
    return float(value)


def read_drawn(model: ModelFacts, drawn: object) -> Drawn | None:
    """What the page draws now, if it says: ids, their language ids and the typed positions' count."""
    if drawn is None:
        return None
    if not isinstance(drawn, dict):
        raise ValueError("The field 'drawn' must be an object.")
    ids = field(drawn, "ids", list, [])
    langs = strings(field(drawn, "langs", list, []))
    if len(ids) > model.max_positions + 1 or len(langs) != len(ids):
        raise ValueError("The field 'drawn' must list each position's id and language id.")
    return Drawn(tuple(ids), tuple(langs), field(drawn, "typed", int, 0))
