"""What the page's events do, as plain functions of the inputs and the engine (testable without a browser)."""

from __future__ import annotations

import html
import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

import gradio as gr

from . import charts, languages
from .engine import Analysis, Distribution, Encoded, Engine, Step, TokenScore
from .payloads import predict_payload, step_payload
from .sampling import GREEDY, SamplingParams
from .tokenizer import N_SPECIAL, SPECIAL_ROLES

DEFAULT_PROMPT = "The weather in Berlin is"
MAX_PROMPT_CHARS = 20_000
# A streamed continuation holds a worker for at most this long, then keeps what came. Gradio's own `time_limit`
# bounds only `.stream()` events, not generators behind a click or an API call. Every other event does bounded
# work (at most MAX_PROMPT_CHARS characters, cut to the model's 512 positions), so it needs no limit of its own.
CONTINUATION_TIME_LIMIT = 30.0  # seconds; the real model streams 256 tokens in about 25 s on 2 CPU cores
RANK_BUCKETS = ((1, "r1"), (10, "r10"), (100, "r100"), (1000, "r1000"))  # GLTR-style colour classes


def new_state(prompt: str = DEFAULT_PROMPT, literal: bool = False) -> dict:
    """A session's continuation: ids chosen after the typed text, the steps that chose them, how specials read."""
    return {"prompt": prompt, "appended": [], "appended_langs": [], "steps": [], "literal": literal}


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
        """The settings from the controls' values (PAGE_CONTROLS of them, in this order), checked."""
        sampling = sampling_params(sample, temperature, sample_top_k, top_p, seed)
        return cls(prompt or "", lang, int(top_k), sampling, continue_lang or "")

    @property
    def fed_lang(self) -> str:
        """The language id the next chosen token is fed with."""
        return self.continue_lang or self.lang


PAGE_CONTROLS = 9  # the values PageSettings.read takes, first among every page event's inputs
# A streamed continuation sends the page a view at most this often (tokens in between arrive together). Each view
# costs the browser 40-70 ms of drawing at 300 words, on the same two cores as the decoding: the page showed 17-19
# tokens per second at 0.1 s, 19-21 at 0.25 s.
STREAM_INTERVAL = 0.25  # seconds


def for_prompt(state: dict, prompt: str) -> dict:
    """The state if it belongs to this text; a continuation of another text starts again."""
    return state if state.get("prompt") == prompt else new_state(prompt, state.get("literal", False))


def with_literal(literal: bool, state: dict) -> dict:
    """The state with the page's setting for specials: literal, `</s>` typed is four characters, not id 1."""
    return {**state, "literal": bool(literal)}


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


def model_line(engine: Engine) -> str:
    """One line naming the checkpoint, device and dtype."""
    dtype = str(engine.dtype).removeprefix("torch.")
    weights = "int8 linear layers" if engine.quantized else dtype
    return f"Model **{engine.source}** on **{engine.device.type}** in **{weights}** · causal attention · `</s>` start"


def model_panel(engine: Engine) -> str:
    """The fidelity choices in force and the model card's intended use, a sentence each."""
    case = "lowercased and accent-stripped" if engine.tokenizer.lowercase else "kept cased, with accents"
    langs = ", ".join(f"{languages.name(lang)} (`{lang}`) = {i}" for lang, i in engine.lang2id.items())
    named = languages.names(languages.ordered(engine.lang2id))
    return "\n".join(
        [
            f"- **Checkpoint:** {engine.source}; {engine.model.config.n_layers} layers, "
            f"{engine.model.config.dim} dimensions, {engine.tokenizer.vocab_size:,} tokens.",
            f"- **Languages:** {langs}, from the checkpoint's `lang2id`; every position carries the chosen one.",
            "- **Attention:** causal, as the model was trained (the hub config's `causal: false` is overridden).",
            "- **Start token:** `</s>`, as in training; no `<s>`, no trailing `</s>`.",
            f"- **Text:** Moses-tokenized with the chosen language's rules, {case}, then BPE.",
            "- **Special tokens**, typed as written (unless *literal* is ticked): "
            + "; ".join(f"`{name}` = {ids}, {role}" for ids, name, role in SPECIAL_ROLES)
            + ".",
            f"- **Speed:** matrix products on {engine.products}; a prefix cache of up to "
            f"{engine.prefix_cache.budget_bytes / 2**20:.0f} MB ({engine.prefix_cache.capacity:,} positions), shared "
            "by every session, keeps what texts already ran, so an event runs only what is new.",
            f"- **Intended use:** exploring a causal language model of {named} (Lample & Conneau 2019).",
            "- **Out of scope:** facts, advice or any text presented as true; it continues text, nothing more.",
            "- **Known limitations:** trained on news and Wikipedia-style text; it repeats itself, mixes languages "
            "and carries the biases of its data.",
        ]
    )


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


def checked_prompt(prompt: str | None) -> str:
    """The typed text, if within the server's limit."""
    prompt = prompt or ""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise gr.Error(f"The text is {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}. Nothing was lost.")
    return prompt


@contextmanager
def user_errors() -> Iterator[None]:
    """Show the engine's one-sentence ValueErrors on the page (or to an API caller) as gr.Error."""
    try:
        yield
    except ValueError as error:
        raise gr.Error(str(error)) from error


def time_limited(steps: Iterable[Step]) -> Iterator[Step]:
    """The steps that come within CONTINUATION_TIME_LIMIT seconds, then a warning: no one holds a worker forever."""
    deadline = time.monotonic() + CONTINUATION_TIME_LIMIT
    for step in steps:
        yield step
        if time.monotonic() > deadline:
            gr.Warning(f"Stopped after {CONTINUATION_TIME_LIMIT:g} seconds, the limit for one continuation.")
            return


def current(engine: Engine, prompt: str, lang: str, state: dict, reserve: int = 0) -> Encoded:
    """What the model is fed: the start token, the typed text's tokens, then the chosen continuation."""
    with user_errors():
        encoded = engine.encode(checked_prompt(prompt), lang, literal=state.get("literal", False))
        return engine.append(encoded, state["appended"], reserve=reserve, id_langs=state["appended_langs"])


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
    """What a streamed token changes: the chart it was drawn from, the coloured text and the status line."""
    n_typed = len(encoded.input_ids) - len(state["appended"])
    return (
        charts.candidates_figure(analysis.next_token),
        gr.skip(),
        token_html(analysis.scores, n_typed, encoded),
        gr.skip(),
        gr.skip(),
        status_line(engine, encoded, analysis.next_token, state),
        state,
    )


def status_line(engine: Engine, encoded: Encoded, distribution: Distribution, state: dict) -> str:
    """Entropy, the positions the model sees, what was cut or reshaped, and the link to this view."""
    notes = [f"Entropy **{distribution.entropy:.2f}** nats · {len(encoded.input_ids)} positions"]
    if encoded.truncated:
        notes.append(f"The text was longer than {engine.max_positions} positions: only its last tokens are used.")
    if distribution.sampling.reshapes:
        notes.append(f"Sampling keeps {distribution.kept_mass:.1%} of the probability, renormalised.")
    notes.append(f"[Link to this view]({share_query(state, encoded.lang, len(distribution.candidates))})")
    return " · ".join(notes)


def share_query(state: dict, lang: str, top_k: int) -> str:
    """A relative URL that restores the text, language, candidate count and continuation."""
    params = {"prompt": state["prompt"], "lang": lang, "top_k": top_k}
    if state.get("literal"):
        params["literal_specials"] = 1
    if state["appended"]:
        params["ids"] = ",".join(map(str, state["appended"]))
    if any(code != lang for code in state["appended_langs"]):
        params["langs"] = ",".join(state["appended_langs"])
    return "?" + urlencode(params)


def token_html(scores: list[TokenScore], n_typed: int, encoded: Encoded) -> str:
    """The text token by token, coloured by rank given its prefix; hover shows what was expected instead. A token
    fed with another language id than the text's is marked with it."""
    spans = []
    langs = encoded.position_langs
    for position, score in enumerate(scores[1:], start=1):
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
    legend = (
        '<div class="legend"><span class="tok r1">rank 1</span><span class="tok r10">top 10</span>'
        '<span class="tok r100">top 100</span><span class="tok r1000">top 1000</span>'
        '<span class="tok rlow">rarer</span><span class="tok new">chosen here</span></div>'
    )
    return f'<div class="tokens">{"".join(spans) or "<em>(empty: the start token alone)</em>"}</div>{legend}'


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


def refresh(
    settings: PageSettings, state: dict, *, inspector_open: bool = True, engine: Engine, steps_changed: bool = False
) -> tuple:
    """Everything shown for the text, language and settings; the model runs only on what the cache lacks."""
    fresh = for_prompt(state, settings.prompt)
    encoded = current(engine, settings.prompt, settings.lang, fresh)
    analysis = engine.analyse(encoded, settings.top_k, settings.sampling)
    steps_changed = steps_changed or len(fresh["steps"]) != len(state.get("steps", []))
    return view(engine, encoded, analysis, fresh, inspector_open=inspector_open, timeline_changed=steps_changed)


def append(state: dict, distribution: Distribution, token_id: int, lang: str) -> dict:
    """The state with one more chosen token, fed with `lang`, recorded as a step of the distribution it came from."""
    chosen = next((c for c in distribution.candidates if c.id == token_id), None)
    if chosen is None:
        raise gr.Error("That candidate is no longer on the chart; pick one of those shown.")
    return with_token(
        state, Step(chosen.id, chosen.token, chosen.prob, chosen.logprob, chosen.rank, distribution), lang
    )


def with_token(state: dict, step: Step, lang: str) -> dict:
    """The state with one more chosen token, fed with the language id `lang`."""
    appended, appended_langs = [*state["appended"], step.id], [*state["appended_langs"], lang]
    return {**state, "appended": appended, "appended_langs": appended_langs, "steps": [*state["steps"], step]}


def next_distribution(engine: Engine, settings: PageSettings, state: dict) -> Distribution:
    """The distribution after the current sequence, with room for one more token (cached when just shown)."""
    encoded = current(engine, settings.prompt, settings.lang, state, reserve=1)
    return engine.analyse(encoded, settings.top_k, settings.sampling).next_token


def step(settings: PageSettings, state: dict, *, inspector_open: bool = True, engine: Engine) -> tuple:
    """Append the most probable next token."""
    state = for_prompt(state, settings.prompt)
    distribution = next_distribution(engine, settings, state)
    state = append(state, distribution, distribution.candidates[0].id, settings.fed_lang)
    return refresh(settings, state, inspector_open=inspector_open, engine=engine, steps_changed=True)


def pick(settings: PageSettings, state: dict, choice, *, inspector_open: bool = True, engine: Engine) -> tuple:
    """Append the candidate a person picked."""
    state = for_prompt(state, settings.prompt)
    if not choice:
        raise gr.Error("Pick one of the candidates listed.")
    state = append(state, next_distribution(engine, settings, state), int(choice), settings.fed_lang)
    return refresh(settings, state, inspector_open=inspector_open, engine=engine, steps_changed=True)


def undo(settings: PageSettings, state: dict, *, inspector_open: bool = True, engine: Engine) -> tuple:
    """Remove the last chosen token."""
    state = for_prompt(state, settings.prompt)
    state = {**state, "appended": state["appended"][:-1], "appended_langs": state["appended_langs"][:-1],
             "steps": state["steps"][:-1]}  # fmt: skip
    return refresh(settings, state, inspector_open=inspector_open, engine=engine, steps_changed=True)


def reset(settings: PageSettings, state: dict, *, inspector_open: bool = True, engine: Engine) -> tuple:
    """Forget the whole continuation, keeping the typed text."""
    state = new_state(settings.prompt, state.get("literal", False))
    return refresh(settings, state, inspector_open=inspector_open, engine=engine, steps_changed=True)


def continue_(
    settings: PageSettings, state: dict, n_tokens, *, inspector_open: bool = True, engine: Engine
) -> Iterator[tuple]:
    """Stream n tokens, greedy or sampled, a view every STREAM_INTERVAL at most; Stop keeps what came so far."""
    state = for_prompt(state, settings.prompt)
    n_tokens = int(n_tokens)
    encoded = current(engine, settings.prompt, settings.lang, state, reserve=n_tokens)
    scores, new_ids = list(engine.analyse(encoded, settings.top_k, settings.sampling).scores), []
    shown_at = time.monotonic()
    with user_errors():
        steps = engine.generate(encoded, n_tokens, settings.sampling, top_k=settings.top_k, lang=settings.fed_lang)
    for chosen in time_limited(steps):
        new_ids.append(chosen.id)
        state = with_token(state, chosen, settings.fed_lang)
        scores.append(TokenScore(chosen.id, chosen.token, chosen.prob, chosen.logprob, chosen.rank))
        if time.monotonic() - shown_at >= STREAM_INTERVAL:
            # While streaming, the chart shows the distribution each token was drawn from.
            analysis = Analysis(scores, chosen.distribution)
            now = engine.append(encoded, new_ids, id_langs=[settings.fed_lang] * len(new_ids))
            yield streamed_view(engine, now, analysis, state)
            shown_at = time.monotonic()
    yield refresh(settings, state, inspector_open=inspector_open, engine=engine, steps_changed=True)


def compare(prompt, top_k, state, *, engine: Engine) -> tuple:
    """The same text and continuation under every language id, side by side."""
    state = for_prompt(state, prompt)
    with user_errors():
        typed, literal = checked_prompt(prompt), state.get("literal", False)
        encodings = [
            engine.append(engine.encode(typed, lang, literal=literal), state["appended"]) for lang in engine.lang2id
        ]
        comparison = engine.compare_encoded(encodings, int(top_k), cached=True)
    kl = " · ".join(f"KL({pair.replace('||', ' ‖ ')}) = {value:.3f} nats" for pair, value in comparison.kl.items())
    tops = " · ".join(
        f"{lang}: **{d.candidates[0].token}** {d.candidates[0].prob:.0%}, entropy {d.entropy:.2f}"
        for lang, d in comparison.distributions.items()
    )
    mass = "  \n".join(mass_line(lang, m) for lang, m in comparison.subword_mass.items() if m)
    return charts.comparison_figure(comparison), f"{kl}  \n{tops}  \n{mass}"


def mass_line(lang: str, mass: dict[str, float]) -> str:
    """ "French id: 3% on English-only subwords, 40% on French-only, 20% on shared ones"."""
    own = [f"{share:.0%} on {languages.name(kind)}-only" for kind, share in mass.items() if kind != "shared"]
    own[0] += " subwords"
    return f"{languages.name(lang)} id: {', '.join(own)}, {mass['shared']:.0%} on shared ones"


def fidelity(prompt, lang, top_k, state, *, engine: Engine) -> tuple:
    """The same text run faithfully and with transformers' defaults (which always read specials), side by side."""
    with user_errors():
        typed, literal = checked_prompt(prompt), state.get("literal", False)
        faithful = engine.predict_encoded(engine.encode(typed, lang, literal=literal), int(top_k))
        defaults = engine.transformers_defaults(typed, lang, top_k=int(top_k))
    pieces = " ".join(engine.tokenizer.display(i) for i in faithful.input_ids)
    default_pieces = " ".join(engine.tokenizer.display(i) for i in defaults.input_ids)
    shared = {c.id for c in faithful.candidates} & {c.id for c in defaults.candidates}
    summary = (
        f"**As trained:** `{pieces}`  \n**transformers' defaults:** `{default_pieces}`  \n"
        f"{len(shared)} of the top {len(faithful.candidates)} candidates are the same."
    )
    return (
        charts.candidates_figure(faithful, title="As trained: causal, &lt;/s&gt; start, cased"),  # titles are HTML
        charts.candidates_figure(defaults, title="transformers' defaults"),
        summary,
    )


def export(settings: PageSettings, state: dict, *, engine: Engine) -> dict:
    """The whole exploration as a JSON file: settings, ids, every step's distribution, the next one."""
    state = for_prompt(state, settings.prompt)
    encoded, literal = current(engine, settings.prompt, settings.lang, state), state.get("literal", False)
    record = {
        "model": engine.source,
        "prompt": settings.prompt,
        "lang": settings.lang,
        "settings": {
            "candidates_shown": settings.top_k,
            "sample": settings.sampling != GREEDY,
            "sampling": asdict(settings.sampling),
            "literal_specials": literal,
        },
        "input_ids": encoded.input_ids,
        "langs": encoded.position_langs,
        "text": engine.decode(encoded.input_ids, settings.lang, literal=literal),
        "steps": [step_payload(step) for step in state["steps"]],
        "next": predict_payload(engine.analyse(encoded, settings.top_k, settings.sampling).next_token),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="xlm-exploration-", delete=False) as file:
        json.dump(record, file, ensure_ascii=False, indent=1)
    return gr.update(value=file.name, visible=True)
