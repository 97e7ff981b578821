"""Logits into what a person reads: each token's probability and rank, the top candidates, divergences."""

from __future__ import annotations

import math

import torch

from ..model.tokenizer import Tokenizer
from .results import START_ID, Candidate, Distribution, Encoded, TokenScore
from .sampling import SamplingParams, sampling_distribution

N_EXPECTED = 3  # alternatives kept per scored token


def check_top_k(k: int) -> int:
    """The number of candidates to list, if within 1-1000."""
    if not 1 <= k <= 1000:
        raise ValueError(f"top-k must be between 1 and 1000, got {k}")
    return k


def token_scores(tokenizer: Tokenizer, rows: torch.Tensor, ids: list[int], first: bool) -> list[TokenScore]:
    """Scores of `ids` from (len(ids), V) logits rows, each of the position before; `first`: ids[0] is the start
    token, scored by nothing."""
    scores = [TokenScore(START_ID, tokenizer.display(START_ID), None, None, None)] if first else []
    targets = torch.tensor(ids[1:] if first else ids, device=rows.device)  # (N,)
    logprobs = rows.log_softmax(-1)  # (N, V)
    picked = logprobs.gather(-1, targets[:, None])[:, 0]  # (N,)
    ranks = (rows > rows.gather(-1, targets[:, None])).sum(-1) + 1  # (N,)
    expected = logprobs.topk(min(N_EXPECTED, logprobs.shape[-1]))  # (N, N_EXPECTED)
    columns = (targets.tolist(), picked.tolist(), ranks.tolist(), expected.indices.tolist(), expected.values.tolist())
    for token_id, logprob, rank, alt_ids, alt_logprobs in zip(*columns, strict=True):
        alternatives = tuple((tokenizer.display(i), math.exp(lp)) for i, lp in zip(alt_ids, alt_logprobs, strict=True))
        scores.append(TokenScore(token_id, tokenizer.display(token_id), math.exp(logprob), logprob, rank, alternatives))
    return scores


def distribution(
    tokenizer: Tokenizer, logits: torch.Tensor, encoded: Encoded, top_k: int, sampling: SamplingParams
) -> Distribution:
    """The top candidates of (vocab,) logits, with entropy and the effect of the sampling settings."""
    logits = logits.float()
    return candidates(
        tokenizer, logits.log_softmax(-1), sampling_distribution(logits, sampling), encoded, top_k, sampling
    )


def candidates(
    tokenizer: Tokenizer,
    logprobs: torch.Tensor,
    after: torch.Tensor,
    encoded: Encoded,
    top_k: int,
    sampling: SamplingParams,
) -> Distribution:
    """A Distribution from (vocab,) log-probabilities and the sampling distribution already computed."""
    check_top_k(top_k)
    probs = logprobs.exp()
    entropy = float(-(probs * logprobs).nan_to_num().sum())
    kept = probs.masked_fill(after == 0, 0.0).sum()
    top = logprobs.topk(min(top_k, logprobs.shape[-1]))
    ranks = range(1, len(top.indices) + 1)
    listed = [
        Candidate(
            id=token_id,
            token=tokenizer.display(token_id),
            piece=tokenizer.piece(token_id),
            prob=math.exp(logprob),
            logprob=logprob,
            rank=rank,
            sampling_prob=float(after[token_id]),
        )
        for rank, token_id, logprob in zip(ranks, top.indices.tolist(), top.values.tolist(), strict=True)
    ]
    return Distribution(encoded.input_ids, encoded.lang, entropy, listed, float(kept), encoded.truncated, sampling)


def kl_divergence(logp: torch.Tensor, logq: torch.Tensor) -> float:
    """KL(p || q) in nats from two (vocab,) log-distributions."""
    return float((logp.exp() * (logp - logq)).sum())
