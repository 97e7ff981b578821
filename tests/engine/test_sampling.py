"""Sampling filters against transformers' logits warpers, and their edge cases."""

import pytest
import torch
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from xlm_demo.engine.sampling import SamplingParams, choose, sampling_distribution, top_k_mask, top_p_mask


def reference_distribution(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    scores = logits[None].clone()
    ids = torch.zeros((1, 1), dtype=torch.long)
    if params.temperature != 1:
        scores = TemperatureLogitsWarper(params.temperature)(ids, scores)
    if params.top_k:
        scores = TopKLogitsWarper(params.top_k)(ids, scores)
    if params.top_p < 1:
        scores = TopPLogitsWarper(params.top_p)(ids, scores)
    return scores.softmax(-1)[0]


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(),
        SamplingParams(temperature=0.7),
        SamplingParams(temperature=1.5, top_k=20),
        SamplingParams(top_p=0.9),
        SamplingParams(temperature=0.8, top_k=50, top_p=0.6),
        SamplingParams(top_k=1),
    ],
)
def test_matches_transformers_warpers(params):
    logits = torch.randn(500, generator=torch.Generator().manual_seed(3)) * 3
    got = sampling_distribution(logits, params)
    torch.testing.assert_close(got, reference_distribution(logits, params), atol=1e-6, rtol=1e-5)
    assert abs(float(got.sum()) - 1) < 1e-6


def test_greedy_is_one_hot_on_the_argmax():
    logits = torch.tensor([0.1, 3.0, 2.9, -1.0])
    probs = sampling_distribution(logits, SamplingParams(temperature=0))
    assert probs.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert choose(probs, torch.Generator().manual_seed(0)) == 1


def test_top_p_keeps_the_token_that_crosses_p():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    assert top_p_mask(probs, 0.6).tolist() == [True, True, False, False]
    assert top_p_mask(probs, 0.5).tolist() == [True, False, False, False]
    assert top_p_mask(probs, 0.01).tolist() == [True, False, False, False]


def test_top_k_zero_keeps_everything():
    assert top_k_mask(torch.randn(10), 0).all()


def test_same_seed_same_choices():
    probs = sampling_distribution(torch.randn(100), SamplingParams())
    draws = [[choose(probs, g) for _ in range(20)] for g in (torch.Generator().manual_seed(7) for _ in range(2))]
    assert draws[0] == draws[1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperature": -1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_k": -3}, "top-k"),
        ({"top_p": 0}, "top-p"),
        ({"top_p": 1.5}, "top-p"),
        ({"seed": -1}, "seed"),
    ],
)
def test_out_of_range_settings_are_refused_with_a_sentence(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SamplingParams(**kwargs)
