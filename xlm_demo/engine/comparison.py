"""The same text under every language id, and the fidelity view: the text run through transformers' defaults."""

from __future__ import annotations

import torch

from ..model.subwords import mass_by_kind
from ..model.tokenizer import Tokenizer
from ..model.xlm import XLM
from .results import BOS_ID, START_ID, Comparison, Encoded
from .sampling import SamplingParams
from .scoring import distribution, kl_divergence


def comparison(
    tokenizer: Tokenizer,
    logits: torch.Tensor,
    encodings: list[Encoded],
    top_k: int,
    subword_masks: dict[str, torch.Tensor],
) -> Comparison:
    """Each encoding's distribution from its row of (n, vocab) logits, the KL divergence of every ordered pair, and
    the probability each puts on each language's own subwords."""
    logprobs = logits.log_softmax(-1)  # (n, V)
    distributions = {
        e.lang: distribution(tokenizer, row, e, top_k, SamplingParams())
        for e, row in zip(encodings, logits, strict=True)
    }
    kl = {
        f"{p.lang}||{q.lang}": kl_divergence(logprobs[i], logprobs[j])
        for i, p in enumerate(encodings)
        for j, q in enumerate(encodings)
        if i != j
    }
    mass = {e.lang: mass_by_kind(row.exp(), subword_masks) for e, row in zip(encodings, logprobs, strict=True)}
    return Comparison(distributions, kl, mass)


def lowercasing_tokenizer(tokenizer: Tokenizer) -> Tokenizer:
    """The same vocabulary and BPE with the hub config's lowercasing and English rules."""
    return Tokenizer(tokenizer.vocab, tokenizer.bpe, lowercase=True, langs=("en",))


def defaults_encoding(lowercasing: Tokenizer, text: str, lang: str, max_positions: int) -> Encoded:
    """What transformers' recipe feeds: lowercased, English Moses rules (transformers 5 drops `lang`), <s> … </s>."""
    ids = lowercasing.encode(text, "en")[-(max_positions - 2) :]
    return Encoded([BOS_ID, *ids, START_ID], lang, truncated=False)


def bidirectional_logits(model: XLM, encoded: Encoded, lang_id: int | None, position: int = -1) -> torch.Tensor:
    """(vocab,) logits at one position (the last by default) with attention both ways, one language id on every
    position, or none at all (None: no language embedding, as transformers when it is passed no `langs`)."""
    device = model.tokens.weight.device
    ids = torch.tensor([encoded.input_ids], device=device)  # (1, T)
    langs = None if lang_id is None else torch.full((1, 1), lang_id, device=device)  # (1, 1): every position
    with torch.inference_mode():
        hidden = model(ids, langs, causal=False)  # (1, T, C)
        return model.logits(hidden[:, position])[0].float()  # (V,)
