"""Logits into what a person reads: each token's probability and rank, the top candidates, divergences."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..model.tokenizer import Tokenizer
from .results import START_ID, Candidate, Distribution, Encoded, TokenScore
from .sampling import SamplingParams, choose, sampling_distribution

N_EXPECTED = 3  # alternatives kept per scored token


def check_top_k(k: int) -> int:
    """The number of candidates to list, if within 1-1000."""
    if not 1 <= k <= 1000:
        raise ValueError(f"top-k must be between 1 and 1000, got {k}")
    return k


def start_score(tokenizer: Tokenizer) -> TokenScore:
    """The start token's score: it is given, not predicted."""
    return TokenScore(START_ID, tokenizer.display(START_ID), None, None, None)


def token_scores(tokenizer: Tokenizer, rows: torch.Tensor, ids: list[int], first: bool) -> list[TokenScore]:
    """Scores of `ids` from (len(ids), V) logits rows, each of the position before; `first`: ids[0] is the start
    token, scored by nothing."""
    scores = [start_score(tokenizer)] if first else []
    targets = torch.tensor(ids[1:] if first else ids, device=rows.device)[:, None]  # (N, 1)
    rows = rows.float()
    normaliser = rows.logsumexp(-1, keepdim=True)  # (N, 1): log-probabilities are logits minus it
    probs = (rows - normaliser).exp()  # (N, V)
    entropies = normaliser[:, 0] - (probs * rows).nansum(-1)  # (N,): -Σ p log p; a -inf logit adds nothing
    target_logits = rows.gather(-1, targets)  # (N, 1)
    picked = (target_logits - normaliser)[:, 0]  # (N,)
    ranks = (rows > target_logits).sum(-1) + 1  # (N,)
    expected = rows.topk(min(N_EXPECTED, rows.shape[-1]))  # (N, N_EXPECTED)
    expected_logprobs = expected.values - normaliser  # (N, N_EXPECTED)
    columns = (targets[:, 0].tolist(), picked.tolist(), ranks.tolist(), expected.indices.tolist(),
               expected_logprobs.tolist(), entropies.tolist())  # fmt: skip
    for token_id, logprob, rank, alt_ids, alt_logprobs, entropy in zip(*columns, strict=True):
        alternatives = tuple((tokenizer.display(i), math.exp(lp)) for i, lp in zip(alt_ids, alt_logprobs, strict=True))
        display = tokenizer.display(token_id)
        scores.append(TokenScore(token_id, display, math.exp(logprob), logprob, rank, alternatives, entropy))
    return scores


@dataclass(frozen=True)
class Summary:
    """What a person reads of (vocab,) next-token logits, from a few passes over the vocabulary: its normaliser,
    entropy, top candidates and the sampling distribution's effect."""

    logits: torch.Tensor  # (V,) float32
    normaliser: float  # log of the softmax's denominator: a token's log-probability is its logit minus it
    distribution: Distribution
    after: torch.Tensor | None  # (V,) the renormalised sampling distribution; None when greedy (all on the argmax)
    argmax: int
    expected: list[tuple[int, float]]  # the N_EXPECTED most probable tokens and their log-probabilities

    def logprob(self, token_id: int) -> float:
        return float(self.logits[token_id]) - self.normaliser

    def rank(self, token_id: int) -> int:
        """1 + how many tokens have a larger logit."""
        return 1 if token_id == self.argmax else int((self.logits > self.logits[token_id]).sum()) + 1

    def token_score(self, tokenizer: Tokenizer, token_id: int) -> TokenScore:
        """The score of a token read at this position, as token_scores gives it, from what this summary holds."""
        logprob = self.logprob(token_id)
        alternatives = tuple((tokenizer.display(i), math.exp(lp)) for i, lp in self.expected)
        entropy = self.distribution.entropy
        return TokenScore(token_id, tokenizer.display(token_id), math.exp(logprob), logprob, self.rank(token_id),
                          alternatives, entropy)  # fmt: skip

    def choose(self, generator: torch.Generator | None) -> int:
        """The next token: the argmax when greedy or given no generator, else one drawn from the distribution."""
        return self.argmax if self.after is None else choose(self.after, generator)


def summarise(
    tokenizer: Tokenizer, logits: torch.Tensor, encoded: Encoded, top_k: int, sampling: SamplingParams
) -> Summary:
    """The top candidates of (vocab,) logits, with entropy and the effect of the sampling settings. Greedy
    settings skip the sampling distribution: it is all on the argmax."""
    check_top_k(top_k)
    logits = logits.float()
    normaliser = logits.logsumexp(-1)  # ()
    probs = (logits - normaliser).exp_()  # (V,)
    entropy = float(normaliser - (probs * logits).nansum())  # -Σ p log p; a -inf logit (p = 0) adds nothing
    widest = logits.topk(min(max(top_k, N_EXPECTED), logits.shape[-1]))  # the candidates and the expected tokens
    top_values, top_ids = widest.values[:top_k], widest.indices[:top_k]
    argmax = int(logits.argmax())
    if sampling.greedy:
        after, kept = None, float(probs[argmax])
        sampling_probs = [1.0 if token_id == argmax else 0.0 for token_id in top_ids.tolist()]
    else:
        after = sampling_distribution(logits, sampling)
        kept = float(probs[after > 0].sum())
        sampling_probs = after[top_ids].tolist()
    columns = (top_ids.tolist(), (top_values - normaliser).tolist(), sampling_probs)
    listed = [
        Candidate(
            id=token_id,
            token=tokenizer.display(token_id),
            piece=tokenizer.piece(token_id),
            prob=math.exp(logprob),
            logprob=logprob,
            rank=rank,
            sampling_prob=sampling_prob,
        )
        for rank, (token_id, logprob, sampling_prob) in enumerate(zip(*columns, strict=True), start=1)
    ]
    distribution = Distribution(encoded.input_ids, encoded.lang, entropy, listed, kept, encoded.truncated, sampling)
    expected_logprobs = (widest.values[:N_EXPECTED] - normaliser).tolist()
    expected = list(zip(widest.indices[:N_EXPECTED].tolist(), expected_logprobs, strict=True))
    return Summary(logits, float(normaliser), distribution, after, argmax, expected)


def distribution(
    tokenizer: Tokenizer, logits: torch.Tensor, encoded: Encoded, top_k: int, sampling: SamplingParams
) -> Distribution:
    """The top candidates of (vocab,) logits, with entropy and the effect of the sampling settings."""
    return summarise(tokenizer, logits, encoded, top_k, sampling).distribution


def kl_divergence(logp: torch.Tensor, logq: torch.Tensor) -> float:
    """KL(p || q) in nats from two (vocab,) log-distributions."""
    return float((logp.exp() * (logp - logq)).sum())
