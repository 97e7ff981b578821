"""Logits into what a person reads: each token's probability and rank, the top candidates, divergences."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..model.tokenizer import Tokenizer
from .results import START_ID, Candidate, Distribution, Encoded, TokenScore
from .sampling import SamplingParams, choose, sampling_distribution

N_EXPECTED = 3  # alternatives kept per scored token
# Values per block when finding the few largest of a vocabulary: one fast pass takes each block's maximum, and
# only the blocks with the largest maxima are searched (torch.topk over all 64,699 took 110 us on one core here).
BLOCK = 256


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
    expected = largest(rows, min(N_EXPECTED, rows.shape[-1]))  # (N, N_EXPECTED) values and ids
    probs, normaliser = normalised(rows, expected)  # (N, V), (N, 1): log-probabilities are logits minus it
    entropies = normaliser[:, 0] - (probs * rows).nansum(-1)  # (N,): -Σ p log p; a -inf logit adds nothing
    target_logits = rows.gather(-1, targets)  # (N, 1)
    picked = (target_logits - normaliser)[:, 0]  # (N,)
    ranks = (rows > target_logits).sum(-1) + 1  # (N,)
    expected_logprobs = expected[0] - normaliser  # (N, N_EXPECTED)
    columns = (targets[:, 0].tolist(), picked.tolist(), ranks.tolist(), expected[1].tolist(),
               expected_logprobs.tolist(), entropies.tolist())  # fmt: skip
    for token_id, logprob, rank, alt_ids, alt_logprobs, entropy in zip(*columns, strict=True):
        alternatives = tuple((tokenizer.display(i), math.exp(lp)) for i, lp in zip(alt_ids, alt_logprobs, strict=True))
        display = tokenizer.display(token_id)
        scores.append(TokenScore(token_id, display, math.exp(logprob), logprob, rank, alternatives, entropy))
    return scores


def largest(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest of the last dimension of (..., V) values, largest first, and their indices, as torch.topk;
    searched only in the k blocks with the largest maxima (which hold them all) and the values after the last
    whole block."""
    size, n_blocks = values.shape[-1], values.shape[-1] // BLOCK
    if k > n_blocks // 4:  # few blocks left out: one search of everything costs as much
        return values.topk(k)
    rows, whole = values.reshape(-1, size), n_blocks * BLOCK  # (N, V)
    best = rows[:, :whole].reshape(len(rows), n_blocks, BLOCK).amax(-1).topk(k).indices  # (N, k)
    within = torch.arange(BLOCK, device=values.device)  # (BLOCK,)
    tail = torch.arange(whole, size, device=values.device).expand(len(rows), -1)  # (N, V - whole)
    index = torch.cat([(best[:, :, None] * BLOCK + within).flatten(1), tail], dim=1)  # (N, k × BLOCK + tail)
    found = rows.gather(-1, index).topk(k)  # (N, k)
    shape = (*values.shape[:-1], k)
    return found.values.view(shape), index.gather(-1, found.indices).view(shape)


def normalised(logits: torch.Tensor, top: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The probabilities of (..., V) logits and (..., 1) log Σ exp of them, from one softmax and their top values
    and indices: the largest logit's probability is exp(0) / Σ exp(logit - largest), so its log gives the
    normaliser without another pass."""
    probs = logits.softmax(-1)  # (..., V)
    top_values, top_ids = top
    return probs, top_values[..., :1] - probs.gather(-1, top_ids[..., :1]).log()


def first_max_index(logits: torch.Tensor, top: tuple[torch.Tensor, torch.Tensor]) -> int:
    """The first index of the largest of (V,) logits (torch.argmax's), from at least two top values and indices:
    the smallest index among those equal to the largest, unless every one is (more may lie beyond them)."""
    top_values, top_ids = top[0].tolist(), top[1].tolist()
    ties = [index for value, index in zip(top_values, top_ids, strict=True) if value == top_values[0]]
    return min(ties) if len(ties) < len(top_ids) else int(logits.argmax())


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
    widest = largest(logits, min(max(top_k, N_EXPECTED), logits.shape[-1]))  # the candidates and expected tokens
    probs, normaliser = normalised(logits, widest)  # (V,), (1,)
    entropy = float(normaliser - (probs * logits).nansum())  # -Σ p log p; a -inf logit (p = 0) adds nothing
    top_values, top_ids = widest[0][:top_k], widest[1][:top_k]
    argmax = first_max_index(logits, widest)
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
    expected_logprobs = (widest[0][:N_EXPECTED] - normaliser).tolist()
    expected = list(zip(widest[1][:N_EXPECTED].tolist(), expected_logprobs, strict=True))
    return Summary(logits, float(normaliser), distribution, after, argmax, expected)


def distribution(
    tokenizer: Tokenizer, logits: torch.Tensor, encoded: Encoded, top_k: int, sampling: SamplingParams
) -> Distribution:
    """The top candidates of (vocab,) logits, with entropy and the effect of the sampling settings."""
    return summarise(tokenizer, logits, encoded, top_k, sampling).distribution


def kl_divergence(logp: torch.Tensor, logq: torch.Tensor) -> float:
    """KL(p || q) in nats from two (vocab,) log-distributions."""
    return float((logp.exp() * (logp - logq)).sum())
