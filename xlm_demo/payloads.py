"""The JSON the CLI prints and the API returns, built from the engine's results."""

from __future__ import annotations

from .engine import Comparison, Distribution, Encoded, Step, TokenScore
from .tokenizer import Tokenizer


def tokenize_payload(encoded: Encoded, tokenizer: Tokenizer) -> dict:
    """Ids exactly as fed to the model, start token included, with each id's BPE piece."""
    return {
        "input_ids": encoded.input_ids,
        "tokens": [tokenizer.piece(i) for i in encoded.input_ids],
        "lang": encoded.lang,
        "truncated": encoded.truncated,
    }


def candidates_payload(distribution: Distribution) -> list[dict]:
    """Top candidates, most probable first."""
    return [
        {
            "id": c.id,
            "token": c.token,
            "prob": c.prob,
            "logprob": c.logprob,
            "rank": c.rank,
            "sampling_prob": c.sampling_prob,
        }
        for c in distribution.candidates
    ]


def predict_payload(distribution: Distribution) -> dict:
    """The next-token distribution after a text."""
    return {
        "input_ids": distribution.input_ids,
        "lang": distribution.lang,
        "entropy": distribution.entropy,
        "kept_mass": distribution.kept_mass,
        "truncated": distribution.truncated,
        "candidates": candidates_payload(distribution),
    }


def score_payload(encoded: Encoded, scores: list[TokenScore], vocab_size: int) -> dict:
    """Each token's probability, log-probability and rank given its prefix (null for the start token)."""
    return {
        "input_ids": encoded.input_ids,
        "lang": encoded.lang,
        "vocab_size": vocab_size,
        "truncated": encoded.truncated,
        "tokens": [
            {"id": s.id, "token": s.token, "prob": s.prob, "logprob": s.logprob, "rank": s.rank} for s in scores
        ],
    }


def step_payload(step: Step) -> dict:
    """One continued token and the distribution it came from."""
    return {
        "id": step.id,
        "token": step.token,
        "prob": step.prob,
        "logprob": step.logprob,
        "rank": step.rank,
        "entropy": step.distribution.entropy,
        "candidates": candidates_payload(step.distribution),
    }


def generate_payload(
    encoded: Encoded, steps: list[Step], text: str, seed: int | None, continue_lang: str | None = None
) -> dict:
    """A continuation: what was fed, what was added (with the language id it was fed with), the text, every step."""
    return {
        "input_ids": encoded.input_ids,
        "lang": encoded.lang,
        "continue_lang": continue_lang or encoded.lang,
        "new_ids": [s.id for s in steps],
        "text": text,
        "seed": seed,
        "truncated": encoded.truncated,
        "steps": [step_payload(s) for s in steps],
    }


def compare_payload(comparison: Comparison) -> dict:
    """Every language id's distribution for the same text, and the KL divergences between them."""
    return {
        "kl": comparison.kl,
        "subword_mass": comparison.subword_mass,
        "distributions": {lang: predict_payload(d) for lang, d in comparison.distributions.items()},
    }
