"""Sessions of many callers batched into one forward pass: the same answers as one at a time, each its own."""

import threading
import time

import pytest
import torch

from tests.reference import reference_logits
from xlm_demo.engine import Engine
from xlm_demo.engine.sampling import GREEDY
from xlm_demo.engine.scheduler import Superseded, wanted_while
from xlm_demo.model.xlm import Packed

# Mixed lengths and languages; the second and fourth start where the first and third stop (cached prefixes).
TEXTS = [
    ("The house is", "en"),
    ("The house is on the hill by the river", "en"),
    ("Die Katze", "de"),
    ("Die Katze schläft auf dem warmen Ofen", "de"),
    ("A", "de"),
    ("Once upon a time there was a small village in the mountains where everyone knew the baker", "en"),
]


def batched(engine: Engine, calls: list) -> list:
    """Every call started while the model is held, so that those that need it all wait and then run as one batch
    (a call whose text the prefix cache holds whole needs no model at all)."""
    results, finished, batch_sizes = [None] * len(calls), [], []
    forward = engine.scheduler._forward

    def observed(batch):
        batch_sizes.append(len(batch))
        forward(batch)

    engine.scheduler._forward = observed

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        finally:
            finished.append(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with engine.holding_model():
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while engine.scheduler.queued + len(finished) < len(calls):  # each waits for the model, or needs none
            assert time.monotonic() < deadline, "the calls never all waited for the model"
            time.sleep(0.01)
        waiting = engine.scheduler.queued
    for thread in threads:
        thread.join(timeout=30)
    assert waiting >= 2 and batch_sizes[0] == waiting  # one forward pass ran every waiting caller's tokens
    return results


def test_packed_sequences_equal_each_run_alone(fresh_engine):
    model = fresh_engine.model
    sequences, past, langs = [[1, 5, 7, 9], [1, 3], [1, 8, 8, 8, 8, 8, 2]], [2, 0, 1], [0, 1, 1]
    with torch.inference_mode():
        alone = [model(torch.tensor([s]), torch.tensor([[lang]]))[0] for s, lang in zip(sequences, langs, strict=True)]
        caches = [model.new_cache(1, 16) for _ in sequences]
        for cache, s, p, lang in zip(caches, sequences, past, langs, strict=True):
            if p:
                model(torch.tensor([s[:p]]), torch.tensor([[lang]]), cache=cache)
        new = [s[p:] for s, p in zip(sequences, past, strict=True)]
        ids = torch.tensor([i for n in new for i in n])
        lang_ids = torch.tensor([lang for n, lang in zip(new, langs, strict=True) for _ in n])
        packed = model.forward_packed(ids, lang_ids, Packed(caches, [len(n) for n in new]))
    for rows, one, p in zip(packed.split([len(n) for n in new]), alone, past, strict=True):
        assert torch.allclose(rows, one[p:], atol=1e-5)


def test_keystrokes_batched_equal_one_at_a_time_and_the_reference(tiny_model, fresh_engine):
    alone = Engine.load(str(tiny_model[0]), device="cpu")
    encodings = [fresh_engine.encode(text, lang) for text, lang in TEXTS]
    fresh_engine.analyse(encodings[0])  # held by the prefix cache: later texts start from it
    fresh_engine.analyse(encodings[2])
    together = batched(fresh_engine, [lambda e=e: fresh_engine.analyse(e) for e in encodings])
    for encoded, analysis in zip(encodings, together, strict=True):
        expected = alone.analyse(encoded)
        assert [c.id for c in analysis.next_token.candidates] == [c.id for c in expected.next_token.candidates]
        got = torch.tensor([c.prob for c in analysis.next_token.candidates])
        assert torch.allclose(got, torch.tensor([c.prob for c in expected.next_token.candidates]), atol=1e-5)
        assert [s.id for s in analysis.scores] == encoded.input_ids  # its own tokens, nobody else's
        assert all(
            a.logprob == pytest.approx(b.logprob, abs=1e-5)
            for a, b in zip(analysis.scores[1:], expected.scores[1:], strict=True)
        )
        lang_id = fresh_engine.lang2id[encoded.lang]
        probs = reference_logits(tiny_model[1], encoded.input_ids, lang_id)[-1].softmax(-1)
        assert torch.allclose(got, probs.topk(len(got)).values, atol=1e-5)


def test_a_continuation_among_keystrokes_continues_as_it_would_alone(tiny_model, fresh_engine):
    alone = Engine.load(str(tiny_model[0]), device="cpu")
    prompt = fresh_engine.encode("Es war einmal", "de", reserve=6)
    expected = [step.id for step in alone.generate(prompt, 6, GREEDY, lang="en")]  # fed under the other id
    keystrokes = [fresh_engine.encode(text, lang) for text, lang in TEXTS[:4]]
    results = batched(
        fresh_engine,
        [lambda: [step.id for step in fresh_engine.generate(prompt, 6, GREEDY, lang="en")]]
        + [lambda e=e: fresh_engine.analyse(e).next_token.candidates[0].id for e in keystrokes],
    )
    assert results[0] == expected
    assert results[1:] == [alone.analyse(e).next_token.candidates[0].id for e in keystrokes]


def test_one_callers_error_is_its_own(fresh_engine):
    full = fresh_engine.encode("The house is", "en")

    def overflow():
        with fresh_engine.session(full) as session:  # room for its own tokens only, then one more than that
            fresh_engine.extend(session, [7, 8])
            return fresh_engine.next_logits(session)

    fine = fresh_engine.encode("Die Katze", "de")

    def failing():
        with pytest.raises(ValueError, match="positions") as raised:
            overflow()
        return raised

    results = batched(fresh_engine, [failing, lambda: fresh_engine.analyse(fine)])
    assert results[0] is not None
    assert results[1].next_token.candidates


def test_one_callers_sessions_run_in_one_batch(tiny_model, fresh_engine):
    sizes, forward = [], fresh_engine.scheduler._forward
    fresh_engine.scheduler._forward = lambda batch: (sizes.append(len(batch)), forward(batch))
    text = "The house is on the hill"
    encodings = [fresh_engine.encode(text, lang) for lang in fresh_engine.lang2id]
    comparison = fresh_engine.compare_encoded(encodings, cached=True)  # the page's Compare: every id's text at once
    assert sizes == [len(encodings)]
    alone = Engine.load(str(tiny_model[0]), device="cpu").compare_encoded(encodings)
    for lang, distribution in comparison.distributions.items():
        expected = alone.distributions[lang].candidates
        assert [c.id for c in distribution.candidates] == [c.id for c in expected]
        assert all(abs(a.prob - b.prob) < 1e-5 for a, b in zip(distribution.candidates, expected, strict=True))


def waiting_then_released(engine: Engine, calls: list) -> tuple[list, list[int]]:
    """Every call started while the model is held, then the model released: what each returned or raised, and the
    size of each batch the scheduler ran."""
    outcomes, sizes, forward = [None] * len(calls), [], engine.scheduler._forward
    engine.scheduler._forward = lambda batch: (sizes.append(len(batch)), forward(batch))

    def run(index: int) -> None:
        try:
            outcomes[index] = calls[index]()
        except Exception as error:  # each caller's own answer, an error included
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with engine.holding_model():
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while engine.scheduler.queued < len(calls):
            assert time.monotonic() < deadline, "the calls never all waited for the model"
            time.sleep(0.01)
    for thread in threads:
        thread.join(timeout=30)
    return outcomes, sizes


@pytest.mark.parametrize("spare, sizes", [(0, [2]), (-1, [1, 1])])
def test_a_batch_takes_jobs_up_to_its_token_budget_and_no_further(tiny_model, fresh_engine, spare, sizes):
    first, second = (
        fresh_engine.encode("The house is on the hill", "en"),
        fresh_engine.encode("Die Katze schläft", "de"),
    )
    fresh_engine.scheduler.batch_tokens = len(first.input_ids) + len(second.input_ids) + spare  # nothing cached yet
    analyses, ran = waiting_then_released(fresh_engine, [lambda e=e: fresh_engine.analyse(e) for e in (first, second)])
    assert ran == sizes
    for encoded, analysis in zip((first, second), analyses, strict=True):
        probs = reference_logits(tiny_model[1], encoded.input_ids, fresh_engine.lang2id[encoded.lang])[-1].softmax(-1)
        assert analysis.next_token.candidates[0].prob == pytest.approx(float(probs.max()), abs=1e-5)


def test_a_batch_that_fails_fails_every_caller_in_it(fresh_engine):
    """A fault of the whole batch (here the model's memory running out) reaches each caller, not the first alone."""
    forward = fresh_engine.scheduler._forward

    def out_of_memory(batch):
        if len(batch) > 1:
            raise RuntimeError("out of memory")
        forward(batch)

    fresh_engine.scheduler._forward = out_of_memory
    texts = [fresh_engine.encode(text, lang) for text, lang in TEXTS[:3]]
    outcomes, sizes = waiting_then_released(fresh_engine, [lambda e=e: fresh_engine.analyse(e) for e in texts])
    assert sizes == [3]
    assert [str(outcome) for outcome in outcomes] == ["out of memory"] * 3
    assert fresh_engine.analyse(texts[0]).next_token.candidates  # alone, each runs again


def test_a_job_replaced_while_it_waits_is_dropped_and_the_others_run(tiny_model, fresh_engine):
    """Under overload a page's older text waits for the model; once a newer one has come, the older is not run."""
    still_wanted, outcomes, sizes, forward = threading.Event(), [None, None], [], fresh_engine.scheduler._forward
    still_wanted.set()
    fresh_engine.scheduler._forward = lambda batch: (sizes.append(len(batch)), forward(batch))
    old, other = fresh_engine.encode("The house is on the hill", "en"), fresh_engine.encode("Die Katze schläft", "de")

    def replaced():
        with wanted_while(still_wanted.is_set):
            try:
                outcomes[0] = fresh_engine.analyse(old)
            except Superseded as dropped:
                outcomes[0] = dropped

    def kept():
        outcomes[1] = fresh_engine.analyse(other)

    threads = [threading.Thread(target=replaced), threading.Thread(target=kept)]
    with fresh_engine.holding_model():
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while fresh_engine.scheduler.queued < 2:
            assert time.monotonic() < deadline, "the calls never both waited for the model"
            time.sleep(0.01)
        still_wanted.clear()  # the page's newer request came while both waited
    for thread in threads:
        thread.join(timeout=30)
    assert isinstance(outcomes[0], Superseded)
    assert sizes == [1]  # the batch held the other caller's job alone
    probs = reference_logits(tiny_model[1], other.input_ids, fresh_engine.lang2id["de"])[-1].softmax(-1)
    assert outcomes[1].next_token.candidates[0].prob == pytest.approx(float(probs.max()), abs=1e-5)
