"""Named API endpoints (predict, score, generate, compare, fill, attention, attribute, lens) returning the CLI's
JSON."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator

import gradio as gr

from .engine import Engine
from .engine.engine import check_max_new_tokens
from .engine.fill import split_words
from .engine.sampling import SamplingParams
from .engine.scoring import check_top_k
from .inside import attention as attention_view
from .inside import attribution
from .inside.lens import logit_lens
from .model import languages
from .page.guards import MODEL_GROUP, ROOM_GROUP, time_limited, user_errors
from .page.requests import checked_text
from .page.tier import ModelTier
from .payloads import (
    attention_payload,
    attribution_payload,
    compare_payload,
    fill_payload,
    generate_payload,
    lens_payload,
    predict_payload,
    score_payload,
)


def endpoints(engine: Engine) -> tuple[Callable, ...]:
    """The endpoints on an engine, their parameter names following the CLI's flags: the front shows them, and the
    model tier runs them (here, or on a replica)."""

    default_lang = languages.default(engine.lang2id)  # every `lang` is checked against the checkpoint's lang2id

    def predict(prompt: str, lang: str = default_lang, top_k: int = 10, literal_specials: bool = False) -> dict:
        """The next-token distribution after a text: top-k candidates, entropy, the ids fed to the model."""
        with user_errors("/predict"):
            encoded = engine.encode(checked_text(prompt), lang, literal=literal_specials)
            return predict_payload(engine.predict_encoded(encoded, check_top_k(int(top_k))))

    def score(prompt: str, lang: str = default_lang, literal_specials: bool = False) -> dict:
        """Each token's probability, log-probability and rank given the tokens before it."""
        with user_errors("/score"):
            encoded = engine.encode(checked_text(prompt), lang, literal=literal_specials)
            return score_payload(encoded, engine.analyse(encoded).scores, engine.model.config.vocab_size)

    def generate(
        prompt: str,
        lang: str = default_lang,
        max_new_tokens: int = 20,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        continue_lang: str | None = None,
        literal_specials: bool = False,
    ) -> Iterator[dict]:
        """Continue a text token by token (temperature 0 is greedy), streaming the result after each token; the new
        tokens carry the language id continue_lang (default: lang)."""
        with user_errors("/generate"):
            sampling = SamplingParams(temperature=temperature, top_k=int(top_k), top_p=top_p, seed=seed).resolved()
            n = check_max_new_tokens(int(max_new_tokens))
            encoded = engine.encode(checked_text(prompt), lang, reserve=n, literal=literal_specials)
            continue_lang = engine.check_lang(continue_lang or lang)
            steps = []
            for step in time_limited(engine.generate(encoded, n, sampling, lang=continue_lang)):
                steps.append(step)
                text = engine.decode(encoded.input_ids + [s.id for s in steps], lang, literal=literal_specials)
                yield generate_payload(encoded, steps, text, sampling.seed, continue_lang)

    def compare(prompt: str, top_k: int = 10, literal_specials: bool = False) -> dict:
        """The next-token distribution under every language id for the same text, with KL divergences."""
        with user_errors("/compare"):
            typed = checked_text(prompt)
            encodings = [engine.encode(typed, lang, literal=literal_specials) for lang in engine.lang2id]
            return compare_payload(engine.compare_encoded(encodings, top_k=int(top_k)))

    def fill(prompt: str, lang: str = default_lang, top_k: int = 10, candidates: str = "") -> dict:
        """Words for the text's one blank (<special1>), ranked by the log-probability of the whole filled text;
        candidates: words of your own, comma-separated, always listed."""
        with user_errors("/fill"):
            return fill_payload(engine.fill(checked_text(prompt), lang, int(top_k), split_words(candidates)))

    def attention(
        prompt: str, lang: str = default_lang, position: int | None = None, literal_specials: bool = False
    ) -> dict:
        """Every layer's and head's attention weights for one position (default: the last) over those up to it."""
        with user_errors("/attention"):
            encoded = engine.encode(checked_text(prompt), lang, literal=literal_specials)
            position = None if position is None else int(position)
            return attention_payload(attention_view.attention(engine, encoded, position), engine.tokenizer)

    def attribute(
        prompt: str,
        lang: str = default_lang,
        target: str | None = None,
        contrast: str | None = None,
        method: str = "grad_x_input",
        steps: int = 16,
        literal_specials: bool = False,
    ) -> dict:
        """How much each position, and its token, position and language embeddings, the next token rests on."""
        with user_errors("/attribute"):
            encoded = engine.encode(checked_text(prompt), lang, literal=literal_specials)
            target_id = attribution.token_id(engine, target, "target")
            contrast_id = attribution.token_id(engine, contrast, "contrast")
            result = attribution.attribute(engine, encoded, target_id, contrast_id, method, int(steps))
            return attribution_payload(result, engine.tokenizer)

    def lens(
        prompt: str,
        lang: str = default_lang,
        top_k: int = 10,
        target: int | None = None,
        literal_specials: bool = False,
    ) -> dict:
        """The next-token distribution read from every layer (the logit lens), layer 0 first, under one id."""
        with user_errors("/lens"):
            encoded = engine.encode(checked_text(prompt), lang, literal=literal_specials)
            return lens_payload(logit_lens(engine, encoded, int(top_k), None if target is None else int(target)))

    return predict, score, generate, compare, fill, attention, attribute, lens


# Sessions through the prefix cache, batched by the engine's scheduler with the page's own events; the others hold
# the model alone while they run.
IN_THE_ROOM = ("predict", "score", "generate")


def register_api(engine: Engine, room_size: int, tier: ModelTier | None = None) -> None:
    """Add the endpoints to the Blocks being built, sharing the page's room; with a `tier`, each runs there."""
    for endpoint in endpoints(engine):
        shown = endpoint if tier is None else forwarded(endpoint, tier)
        if endpoint.__name__ in IN_THE_ROOM:
            gr.api(shown, api_name=endpoint.__name__, concurrency_id=ROOM_GROUP, concurrency_limit=room_size)
        else:
            gr.api(shown, api_name=endpoint.__name__, concurrency_id=MODEL_GROUP)


def forwarded(endpoint: Callable, tier: ModelTier) -> Callable:
    """The endpoint as the API shows it (its parameters, their defaults, its docstring), computed by the tier."""
    signature = inspect.signature(endpoint)

    def arguments(args: tuple, kwargs: dict) -> tuple:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()  # the front's defaults (its model's language), sent as given
        return bound.args

    if inspect.isgeneratorfunction(endpoint):
        run_stream = tier.reading(streamed_answer)

        @functools.wraps(endpoint)
        def stream(*args, **kwargs) -> Iterator[dict]:
            yield from run_stream(endpoint.__name__, arguments(args, kwargs))

        return stream
    run = tier.reading(answer)

    @functools.wraps(endpoint)
    def call(*args, **kwargs) -> dict:
        return run(endpoint.__name__, arguments(args, kwargs))

    return call


def answer(name: str, args: tuple, engine: Engine) -> dict:
    """An endpoint's answer on `engine` (the tier's)."""
    return named(engine)[name](*args)


def streamed_answer(name: str, args: tuple, engine: Engine) -> Iterator[dict]:
    """A streaming endpoint's answers on `engine` (the tier's), as they come."""
    yield from named(engine)[name](*args)


def named(engine: Engine) -> dict[str, Callable]:
    """The endpoints on an engine, by name."""
    return {endpoint.__name__: endpoint for endpoint in endpoints(engine)}
