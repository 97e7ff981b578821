"""Sequences reading their context where a shared pool holds it (scattered slots), against transformers' model on
the whole sequence."""

import pytest
import torch

from tests.reference import TINY, hub_state_dict, random_reference, reference_logits
from xlm_demo.model.kv import KVPool, Paged
from xlm_demo.model.weights import build_model
from xlm_demo.model.xlm import Packed

TEXTS = [[1, 17, 42, 99, 5, 63, 7, 118, 30, 12, 11], [1, 8, 8, 70, 3], [1, 50, 51, 52, 53, 54, 55]]
LANG_IDS = [1, 0, 1]


@pytest.fixture(scope="module")
def reference():
    return random_reference()


@pytest.fixture(scope="module")
def model(reference):
    return build_model(TINY, hub_state_dict(reference))


def pooled(model, pool: KVPool, ids: list[int], lang_id: int, slots: list[int]) -> None:
    """Run a prefix alone and put its keys and values into the given slots of the pool."""
    cache = model.new_cache(1, len(ids))
    with torch.inference_mode():
        model(torch.tensor([ids]), torch.tensor([[lang_id]]), cache=cache)
    pool.write(slots, cache, 0)


def test_packed_sequences_reading_their_prefix_from_scattered_slots_equal_the_reference(model, reference):
    pool = KVPool(TINY, 40, torch.float32, "cpu")
    cuts = [6, 0, 3]  # positions each sequence finds in the pool; the second finds none
    order = torch.randperm(40, generator=torch.Generator().manual_seed(1)).tolist()  # slots out of order
    contexts = []
    for ids, lang_id, cut in zip(TEXTS, LANG_IDS, cuts, strict=True):
        slots, order = order[:cut], order[cut:]
        if cut:
            pooled(model, pool, ids[:cut], lang_id, slots)
        contexts.append(Paged(pool, slots, model.new_cache(1, len(ids) - cut)))
    new = [ids[cut:] for ids, cut in zip(TEXTS, cuts, strict=True)]
    langs = [lang_id for n, lang_id in zip(new, LANG_IDS, strict=True) for _ in n]
    with torch.inference_mode():
        packed = Packed(contexts, [len(n) for n in new])
        hidden = model.forward_packed(torch.tensor([i for n in new for i in n]), torch.tensor(langs), packed)
        logits = model.logits(hidden)
    for rows, ids, lang_id, cut in zip(logits.split(packed.lengths), TEXTS, LANG_IDS, cuts, strict=True):
        expected = reference_logits(reference, ids, lang_id)[cut:]
        torch.testing.assert_close(rows, expected, atol=1e-5, rtol=1e-5)


def test_a_paged_sequence_continues_token_by_token_and_reads_back_what_it_holds(model, reference):
    pool = KVPool(TINY, 20, torch.float32, "cpu")
    ids, slots = TEXTS[0], [13, 2, 7, 19]
    pooled(model, pool, ids[:4], 1, slots)
    context = Paged(pool, slots, model.new_cache(1, len(ids) - 4))
    got = []
    with torch.inference_mode():
        for token in ids[4:]:
            got.append(model.logits(model(torch.tensor([[token]]), torch.tensor([[1]]), cache=context))[0, -1])
    torch.testing.assert_close(torch.stack(got), reference_logits(reference, ids, 1)[4:], atol=1e-5, rtol=1e-5)
    whole = model.new_cache(1, len(ids))
    with torch.inference_mode():
        model(torch.tensor([ids]), torch.tensor([[1]]), cache=whole)
    for start, end in ((0, 4), (2, 9), (4, len(ids))):  # from the pool, across, and from its own cache
        for ours, theirs in zip(context.span(start, end), whole.span(start, end), strict=True):
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    copied = context.repeated(2, len(ids) + 1)
    torch.testing.assert_close(copied.keys[:, 1, :, : len(ids)], whole.keys[:, 0], atol=1e-5, rtol=0)


def test_paged_sequences_continuing_in_turns_each_read_their_own_context(model, reference):
    pool = KVPool(TINY, 20, torch.float32, "cpu")
    texts, cuts, slots = [TEXTS[0], TEXTS[2]], [4, 3], [[13, 2, 7, 19], [5, 6, 11]]  # the pool's buffer shared
    contexts = []
    for ids, cut, own_slots in zip(texts, cuts, slots, strict=True):
        pooled(model, pool, ids[:cut], 1, own_slots)
        contexts.append(Paged(pool, own_slots, model.new_cache(1, len(ids) - cut)))
    got = [[], []]
    with torch.inference_mode():
        for step in range(4):  # one token of each in turn, then two of the first alone
            for which in (0, 1) if step < 2 else (0, 0):
                token = torch.tensor([[texts[which][cuts[which] + len(got[which])]]])
                hidden = model(token, torch.tensor([[1]]), cache=contexts[which])
                got[which].append(model.logits(hidden)[0, -1])
    for rows, ids, cut in zip(got, texts, cuts, strict=True):
        expected = reference_logits(reference, ids, 1)[cut : cut + len(rows)]
        torch.testing.assert_close(torch.stack(rows), expected, atol=1e-5, rtol=1e-5)
