"""The JSON the CLI prints and the API returns, built from the engine's results."""

from __future__ import annotations

from .engine import Comparison, Distribution, Encoded, Fill, Step, TokenScore
from .inside.attention import AttentionMap
from .inside.attribution import Attribution
from .inside.lens import Lens
from .model.tokenizer import Tokenizer


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


def fill_payload(fill: Fill) -> dict:
    """A text's blank filled: each candidate's tokens, the log-probability of the whole filled text, and its
    probability normalised over the candidates listed, most probable first."""
    return {
        "input_ids": fill.input_ids,
        "lang": fill.lang,
        "blank": fill.blank,
        "candidates": [
            {"text": c.text, "ids": list(c.ids), "logprob": c.logprob, "prob": c.prob} for c in fill.candidates
        ],
    }


def attention_payload(attention: AttentionMap, tokenizer: Tokenizer) -> dict:
    """Every layer's and head's weights over the positions up to the query: layers × heads × (position + 1)."""
    return {
        "input_ids": attention.input_ids,
        "tokens": [tokenizer.display(i) for i in attention.input_ids[: attention.position + 1]],
        "lang": attention.lang,
        "position": attention.position,
        "truncated": attention.truncated,
        "weights": attention.weights.tolist(),
    }


def token_ref(token_id: int | None, tokenizer: Tokenizer) -> dict | None:
    """An id with its display form."""
    return None if token_id is None else {"id": token_id, "token": tokenizer.display(token_id)}


def attribution_payload(attribution: Attribution, tokenizer: Tokenizer) -> dict:
    """Each position's share of the next token's log-probability, split into its three embeddings."""
    rows = zip(attribution.input_ids, attribution.scores.tolist(), *attribution.parts.tolist(), strict=True)
    return {
        "input_ids": attribution.input_ids,
        "lang": attribution.lang,
        "target": token_ref(attribution.target, tokenizer),
        "contrast": token_ref(attribution.contrast, tokenizer),
        "method": attribution.method,
        "steps": attribution.steps,
        "value": attribution.value,
        "baseline_value": attribution.baseline_value,
        "completeness_error": attribution.completeness_error,
        "truncated": attribution.truncated,
        "tokens": [
            {
                "id": token_id,
                "token": tokenizer.display(token_id),
                "score": score,
                "token_part": token_part,
                "position_part": position_part,
                "language_part": language_part,
            }
            for token_id, score, token_part, position_part, language_part in rows
        ],
    }


def lens_payload(lens: Lens) -> dict:
    """The next-token distribution read from every layer, layer 0 (the embeddings) first."""
    return {
        "input_ids": lens.input_ids,
        "lang": lens.lang,
        "layers": [
            {
                "layer": r.layer,
                "entropy": r.entropy,
                "kl_to_final": r.kl_to_final,
                "target": {"id": r.target.id, "prob": r.target.prob, "rank": r.target.rank},
                "subword_mass": r.subword_mass,
                "candidates": [{"id": c.id, "token": c.token, "prob": c.prob} for c in r.candidates],
            }
            for r in lens.layers
        ],
    }
