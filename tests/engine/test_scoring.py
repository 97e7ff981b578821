"""The vocabulary passes behind every distribution and score, against torch's own topk, argmax and logsumexp, at the
real vocabulary's size (the test checkpoints' vocabularies are too small for the search by blocks)."""

import pytest
import torch

from xlm_demo.engine.scoring import first_max_index, largest, normalised

REAL_VOCAB = 64699  # not a multiple of the block: the values after the last whole block are searched too


def logits(rows: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, size, generator=torch.Generator().manual_seed(seed)) * 4


@pytest.mark.parametrize("size", [REAL_VOCAB, 10222, 120])
@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_largest_equals_topk(size, k):
    values = logits(3, size)
    values[1, -1] = 100.0  # the largest in the values after the last whole block
    values[2, :k] = -100.0  # and none in the first block
    found, expected = largest(values, k), values.topk(k)
    assert torch.equal(found[0], expected.values) and torch.equal(found[1], expected.indices)
    one = largest(values[1], k)  # one row, as a distribution's
    assert torch.equal(one[0], expected.values[1]) and torch.equal(one[1], expected.indices[1])


@pytest.mark.parametrize("ties", [[7, 300], [64000, 5], [9, 10, 11]])
def test_first_max_index_is_argmax_among_ties(ties):
    values = logits(1, REAL_VOCAB)[0]
    values[ties] = 50.0
    assert first_max_index(values, largest(values, 3)) == int(values.argmax()) == min(ties)


def test_normalised_equals_softmax_and_logsumexp():
    values = logits(4, REAL_VOCAB)
    probs, normaliser = normalised(values, largest(values, 3))
    torch.testing.assert_close(probs, values.softmax(-1))
    torch.testing.assert_close(normaliser, values.logsumexp(-1, keepdim=True), atol=1e-5, rtol=0)
