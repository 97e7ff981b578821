"""Where a request is checked: the view route's JSON, the page state the Gradio sections read, a share link's query
and the named API's text, all here. Each limit is written once, and each refusal is one sentence (UserError), which
guards.py tells at each edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..engine import Engine
from ..engine.sampling import GREEDY, SamplingParams
from ..model import languages
from .state import DEFAULT_PROMPT, Chosen, PageState

MAX_PROMPT_CHARS = 20_000  # a server answers many people, and no one's text may hold it long
MAX_CANDIDATES = 50  # candidates listed, from 1: the page's slider
MAX_CONTINUE = 64  # tokens per Continue, from 1: the page's slider
ACTIONS = ("show", "step", "pick", "undo", "reset", "continue")
KIND_NAMES = {str: "a string", int: "a whole number", bool: "true or false", list: "a list", dict: "an object"}


class UserError(ValueError):
    """A caller's mistake, as one sentence, and the HTTP status a route answers it with. The engine's own
    ValueErrors are mistakes of the same kind (400): every edge reads both alike."""

    def __init__(self, sentence: str, status: int = 400):
        super().__init__(sentence)
        self.status = status

    def __reduce__(self):  # pickled whole: a replica's refusal reaches the front with its status
        return UserError, (str(self), self.status)


@dataclass(frozen=True)
class ModelFacts:
    """What checking a request needs to know of the model, without its weights (a front of replicas holds these
    alone)."""

    lang2id: dict[str, int]
    vocab_size: int
    max_positions: int

    @classmethod
    def of(cls, engine: Engine) -> ModelFacts:
        """The facts of an engine loaded here."""
        return cls(dict(engine.lang2id), engine.model.config.vocab_size, engine.max_positions)


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
class ViewRequest:
    """One request of a page to the view route: what to do, and the page state the view depends on."""

    seq: int
    page: str  # the page's own id: its older requests are dropped when a newer one comes
    action: str
    state: PageState
    choice: int | None  # the candidate a person picked
    n_tokens: int  # how many tokens Continue adds
    drawn: Drawn | None  # what the page draws now: unchanged spans are not sent again
    table: bool  # the page shows the tokens' table
    room: str  # the presenter's key of the room the view is shown to, or empty


def read_view_request(model: ModelFacts, body: object) -> ViewRequest:
    """A view request from its JSON body: its page state, its action and what the page draws now."""
    if not isinstance(body, dict):
        raise UserError("The request must be a JSON object.")
    action = field(body, "action", str, "show")
    if action not in ACTIONS:
        raise UserError(f"Unknown action {action!r}; one of {', '.join(ACTIONS)}.")
    n_tokens = field(body, "n_tokens", int, 12)
    if not 1 <= n_tokens <= MAX_CONTINUE:
        raise UserError(f"Continue adds between 1 and {MAX_CONTINUE} tokens; {n_tokens} were asked.")
    return ViewRequest(
        seq=field(body, "seq", int, 0),
        page=field(body, "page", str, "")[:64],
        action=action,
        state=read_state(model, body),
        choice=field(body, "choice", int, None),
        n_tokens=n_tokens,
        drawn=read_drawn(model, body.get("drawn")),
        table=field(body, "table", bool, False),
        room=field(body, "room", str, ""),
    )


def read_state(model: ModelFacts, fields: object) -> PageState:
    """The page state in the view route's fields (prompt, lang, top_k, sampling, literal, continue_lang, appended,
    appended_langs), as the page sends it with every request and the sections read it."""
    if fields is None:
        raise UserError("The page is still loading; try again in a moment.")
    if not isinstance(fields, dict):
        raise UserError("The page state must be a JSON object.")
    lang = known_lang(model, field(fields, "lang", str, ""))
    appended = field(fields, "appended", list, [])
    appended_langs = field(fields, "appended_langs", list, [])
    if len(appended_langs) != len(appended):
        raise UserError("Each chosen token needs its language id: appended and appended_langs differ in length.")
    continue_lang = field(fields, "continue_lang", str, "")
    return PageState(
        prompt=checked_text(field(fields, "prompt", str, "")),
        lang=lang,
        top_k=candidates(field(fields, "top_k", int, 10)),
        sampling=read_sampling(field(fields, "sampling", dict, {})),
        literal=field(fields, "literal", bool, False),
        chosen=chosen_tokens(model, appended, [known_lang(model, code) for code in strings(appended_langs)]),
        continue_lang=continue_lang and known_lang(model, continue_lang),  # empty: the text's
    )


def read_share_link(model: ModelFacts, params: Mapping[str, str]) -> tuple[PageState, list[str]]:
    """The page state a share link restores (?prompt=…&lang=de&top_k=7&literal_specials=1&ids=…&langs=…), by the
    rules a request is checked by. The page opens whatever the link holds: a part that breaks a rule is left out
    (the text past the limit, an unknown language id, a count out of range, an id outside the vocabulary, tokens
    past the model's positions), and each is told in one sentence."""
    told: list[str] = []

    def kept(read, value: str, default):
        try:
            return read(value) if value else default
        except UserError as error:
            told.append(f"From the link: {error} It was left out.")
            return default

    prompt = params.get("prompt", DEFAULT_PROMPT)
    if len(prompt) > MAX_PROMPT_CHARS:
        told.append(f"From the link: the text is {len(prompt):,} characters; the first {MAX_PROMPT_CHARS:,} are kept.")
        prompt = prompt[:MAX_PROMPT_CHARS]
    lang = kept(lambda code: known_lang(model, code), params.get("lang", ""), languages.default(model.lang2id))
    top_k = kept(lambda count: candidates(whole_number(count, "top_k")), params.get("top_k", ""), 10)
    langs = [kept(lambda code: known_lang(model, code), code, lang) for code in params.get("langs", "").split(",")]
    chosen = []
    for n, text in enumerate(params.get("ids", "").split(",")):
        fed = langs[n] if n < len(langs) else lang
        chosen += kept(lambda i, fed=fed: chosen_tokens(model, [whole_number(i, "ids")], [fed]), text, ())
    if len(chosen) > model.max_positions:
        told.append(f"From the link: {len(chosen)} chosen tokens do not fit in the model's {model.max_positions} "
                    f"positions; the first {model.max_positions} are kept.")  # fmt: skip
    literal = params.get("literal_specials") == "1"
    return PageState(prompt, lang, top_k, literal=literal, chosen=tuple(chosen[: model.max_positions])), told


def checked_text(prompt: str | None) -> str:
    """The typed text, if within the server's limit."""
    prompt = prompt or ""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise UserError(f"The text is {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}.")
    return prompt


def known_lang(model: ModelFacts, code: str) -> str:
    """A language id of the checkpoint's."""
    if code not in model.lang2id:
        raise UserError(f"Unknown language id {code!r}; this model has {', '.join(model.lang2id)}.")
    return code


def candidates(top_k: int) -> int:
    """How many candidates the page lists: one rule for a request, the sections and a share link."""
    if not 1 <= top_k <= MAX_CANDIDATES:
        raise UserError(f"The number of candidates must be between 1 and {MAX_CANDIDATES}; it was {top_k}.")
    return top_k


def chosen_tokens(model: ModelFacts, ids: list, langs: list[str]) -> tuple[Chosen, ...]:
    """Token ids in the vocabulary, no more than the model's positions, each with its language id."""
    vocab_size = model.vocab_size
    if len(ids) > model.max_positions:
        raise UserError(f"{len(ids)} chosen tokens do not fit in the model's {model.max_positions} positions.")
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vocab_size for i in ids):
        raise UserError(f"Token ids must be whole numbers from 0 to {vocab_size - 1}.")
    return tuple(Chosen(i, lang) for i, lang in zip(ids, langs, strict=True))


def read_sampling(sampling: dict) -> SamplingParams:
    """The sampling settings: greedy unless `sample` is on."""
    if not field(sampling, "sample", bool, False):
        return GREEDY
    try:
        return SamplingParams(
            temperature=number(sampling, "temperature", 1.0),
            top_k=field(sampling, "top_k", int, 0),
            top_p=number(sampling, "top_p", 1.0),
            seed=field(sampling, "seed", int, None),
        )
    except UserError:
        raise
    except ValueError as error:  # the engine's own limits on sampling
        raise UserError(str(error)) from None


def read_drawn(model: ModelFacts, drawn: object) -> Drawn | None:
    """What the page draws now, if it says: ids, their language ids and the typed positions' count."""
    if drawn is None:
        return None
    if not isinstance(drawn, dict):
        raise UserError("The field 'drawn' must be an object.")
    ids = field(drawn, "ids", list, [])
    langs = strings(field(drawn, "langs", list, []))
    if len(ids) > model.max_positions + 1 or len(langs) != len(ids):
        raise UserError("The field 'drawn' must list each position's id and language id.")
    return Drawn(tuple(ids), tuple(langs), field(drawn, "typed", int, 0))


def field(fields: dict, name: str, kind: type, default):
    """One field, of the kind a page sends (absent or null: the default)."""
    value = fields.get(name)
    if value is None:
        return default
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UserError(f"The field {name!r} must be {KIND_NAMES[kind]}.")
    return value


def number(fields: dict, name: str, default: float) -> float:
    """A numeric field, whole or not."""
    value = fields.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"The field {name!r} must be a number.")
    return float(value)


def strings(values: list) -> list[str]:
    """A list of strings, as sent."""
    if not set(map(type, values)) <= {str}:  # in C: a text's every position is sent
        raise UserError("Language ids must be strings.")
    return values


def whole_number(text: str, name: str) -> int:
    """A link's whole number, as written in its query."""
    if not text.strip().isdigit():
        raise UserError(f"{name} takes whole numbers; {text!r} is not one.")
    return int(text)
