"""Pure functions that turn next-token logits into the distribution a continuation draws from."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, replace

import torch

MAX_TOP_K = 1000


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen: temperature 0 is greedy; top_k 0 and top_p 1 switch those filters off."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and 0 <= self.temperature <= 10):
            raise ValueError(f"temperature must be between 0 and 10, got {self.temperature}")
        if not 0 <= self.top_k <= MAX_TOP_K:
            raise ValueError(f"top-k must be between 0 (off) and {MAX_TOP_K}, got {self.top_k}")
        if not (math.isfinite(self.top_p) and 0 < self.top_p <= 1):
            raise ValueError(f"top-p must be above 0 and at most 1, got {self.top_p}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise ValueError(f"the seed must be a whole number from 0 to 2^63 - 1, got {self.seed}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def reshapes(self) -> bool:
        """Whether sampling draws from something other than the model's own distribution (greedy aside)."""
        return not self.greedy and (self.temperature != 1 or self.top_k > 0 or self.top_p < 1)

    def resolved(self) -> SamplingParams:
        """These settings with a fresh random seed where sampling needs one and none was given."""
        if self.greedy or self.seed is not None:
            return self
        return replace(self, seed=secrets.randbits(63))


GREEDY = SamplingParams(temperature=0.0)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits divided by the temperature; temperature 0 keeps only the argmax (greedy)."""
    if temperature == 0:
        keep = torch.zeros_like(logits, dtype=torch.bool)
        keep.scatter_(-1, logits.argmax(-1, keepdim=True), True)
        return logits.masked_fill(~keep, -math.inf)
    return logits / temperature


def top_k_mask(logits: torch.Tensor, k: int) -> torch.Tensor:
    """True for the k largest logits of the last dimension (all of them when k is 0)."""
    if k == 0 or k >= logits.shape[-1]:
        return torch.ones_like(logits, dtype=torch.bool)
    threshold = logits.topk(k, dim=-1).values[..., -1:]  # (..., 1)
    return logits >= threshold


def top_p_mask(probs: torch.Tensor, p: float) -> torch.Tensor:
    """True for the smallest set of most probable tokens whose mass reaches p (nucleus sampling)."""
    if p >= 1:
        return torch.ones_like(probs, dtype=torch.bool)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(-1) - sorted_probs  # mass of the tokens ranked above each one
    keep_sorted = mass_before < p  # the most probable token always stays
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


def sampling_distribution(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """The renormalised probabilities sampling draws from, after temperature, top-k and top-p."""
    scaled = apply_temperature(logits.float(), params.temperature)
    scaled = scaled.masked_fill(~top_k_mask(scaled, params.top_k), -math.inf)
    probs = scaled.softmax(-1)
    probs = probs.masked_fill(~top_p_mask(probs, params.top_p), 0.0)
    return probs / probs.sum(-1, keepdim=True)


def choose(probs: torch.Tensor, generator: torch.Generator | None) -> int:
    """One token id drawn from a (vocab,) distribution; the argmax where no generator is given."""
    if generator is None:
        return int(probs.argmax())
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))
