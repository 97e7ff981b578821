"""Filling a blank against the reference: every filled text's log-probability from transformers run causally with the
language id on every position, the proposals' words from its own next-token distributions, the batched scoring
against one by one, and the hub widget's reading against transformers' fill-mask pipeline."""

import math

import pytest
import torch

from tests.checkpoints import LANG2ID
from tests.reference import (
    folder_tokenizer,
    reference_fill_mask,
    reference_ids,
    reference_logits,
    reference_text_logprob,
)
from xlm_demo.engine import Encoded
from xlm_demo.engine import fill as blanks
from xlm_demo.engine.forward import continuation_logprobs
from xlm_demo.engine.results import START_ID

TEXTS = {
    "en": "The weather in <special1> was cold that winter , and the trains ran late .",
    "de": "Die Katze schläft auf dem <special1> , weil es kalt ist .",
}


@pytest.fixture(scope="module")
def fills(engine):
    """Both texts filled under both ids, with two words of a person's own, one of several pieces."""
    return {text_lang: engine.fill_languages(TEXTS[text_lang], ["en", "de"], 8, ["Berlin", "Regenschirm"])
            for text_lang in TEXTS}  # fmt: skip


def filled_ids(fill, ids):
    return [*fill.input_ids[: fill.blank], *ids, *fill.input_ids[fill.blank + 1 :]]


@pytest.mark.parametrize("text_lang", ["en", "de"])
@pytest.mark.parametrize("lang", ["en", "de"])
def test_every_filled_text_scores_as_the_reference(fills, reference, text_lang, lang):
    fill = fills[text_lang][lang]
    assert len(fill.candidates) >= 8
    for candidate in fill.candidates:
        expected = reference_text_logprob(reference, filled_ids(fill, candidate.ids), LANG2ID[lang])
        assert candidate.logprob == pytest.approx(expected, abs=1e-5), candidate.text
        left = reference_text_logprob(reference, [*fill.input_ids[: fill.blank], *candidate.ids], LANG2ID[lang])
        left_before = reference_text_logprob(reference, fill.input_ids[: fill.blank], LANG2ID[lang])
        assert candidate.left_logprob == pytest.approx(left - left_before, abs=1e-5)


@pytest.mark.parametrize("lang", ["en", "de"])
def test_the_text_around_the_blank_is_tokenized_as_the_reference(tiny_model, fills, lang):
    theirs = folder_tokenizer(tiny_model[0], LANG2ID)
    fill = fills[lang][lang]
    assert fill.input_ids == [START_ID, *reference_ids(theirs, TEXTS[lang], lang)]
    assert fill.input_ids[fill.blank] == blanks.MASK_ID
    given = {c.text: c for c in fill.candidates if c.given}
    assert list(given["Berlin"].ids) == reference_ids(theirs, "Berlin", lang)
    assert list(given["Regenschirm"].ids) == reference_ids(theirs, "Regenschirm", lang)
    assert len(given["Regenschirm"].ids) > 1  # a word of several pieces


def test_candidates_are_ranked_and_normalised_over_those_listed(fills):
    for fill in (fills["en"]["en"], fills["de"]["de"]):
        logprobs = [c.logprob for c in fill.candidates]
        assert logprobs == sorted(logprobs, reverse=True)
        assert sum(c.prob for c in fill.candidates) == pytest.approx(1.0, abs=1e-9)
        top, given = fill.candidates[0], [c for c in fill.candidates if c.given]
        assert len(given) == 2  # listed however they rank
        assert all(math.exp(c.logprob - top.logprob) == pytest.approx(c.prob / top.prob) for c in fill.candidates)


def test_each_language_id_scores_the_same_candidates(fills):
    by_id = {lang: {c.ids: c.logprob for c in fill.candidates} for lang, fill in fills["en"].items()}
    assert by_id["en"] != by_id["de"]
    union = {c.ids for fill in fills["en"].values() for c in fill.candidates}
    assert len(union) > len(fills["en"]["en"].candidates)  # each id's list is drawn from one set of candidates
    assert fills["en"]["en"].scored == fills["en"]["de"].scored >= len(union)


@pytest.mark.parametrize("lang", ["en", "de"])
def test_the_left_context_alone_is_the_references_next_token(fills, reference, lang):
    fill = fills[lang][lang]
    expected = reference_logits(reference, fill.input_ids[: fill.blank], LANG2ID[lang])[-1].softmax(-1)
    top = expected.topk(len(fill.next_token.candidates))
    assert [c.id for c in fill.next_token.candidates] == top.indices.tolist()
    assert [c.prob for c in fill.next_token.candidates] == pytest.approx(top.values.tolist(), abs=1e-5)


def reference_next_pieces(reference, ids, lang_id, n):
    """The reference's n most probable next pieces (no specials) and their log-probabilities."""
    logprobs = reference_logits(reference, ids, lang_id)[-1].double().log_softmax(-1)
    top = logprobs[14:].topk(n)
    return zip((top.indices + 14).tolist(), top.values.tolist(), strict=True)


def reference_greedy_word(reference, ids, lang_id, tokenizer, pieces):
    """The word the reference's most probable pieces make from a first piece on (at most `pieces` pieces)."""
    word = list(ids)
    while len(word) - len(ids) < pieces - 1 and not tokenizer.ends_word(word[-1]):
        word.append(next(iter(reference_next_pieces(reference, word, lang_id, 1)))[0])
    return word[len(ids) - 1 :]


@pytest.mark.parametrize("lang", ["en", "de"])
def test_proposals_are_the_top_next_tokens_made_whole_words(engine, reference, lang):
    encoded = engine.encode_blank(TEXTS[lang], lang, reserve=3)
    left = encoded.input_ids[: encoded.input_ids.index(blanks.MASK_ID)]
    lang_id = LANG2ID[lang]
    with engine.session(Encoded(left, lang, False), reserve=1) as session:
        logits = engine.next_logits(session)
        proposed = blanks.propose(engine.model, engine.tokenizer, session.cache, logits, lang_id, n=20)
    logprobs = reference_logits(reference, left, lang_id)[-1].double().log_softmax(-1)
    first_pieces = logprobs[14:].topk(20).indices + 14
    assert [ids[0] for ids in proposed] == [i for i in first_pieces.tolist() if i in {ids[0] for ids in proposed}]
    assert any(len(ids) > 1 for ids in proposed)  # words of several pieces
    for ids in proposed:
        assert engine.tokenizer.ends_word(ids[-1]) and not any(map(engine.tokenizer.ends_word, ids[:-1]))
        # The beam finds a word at least as probable as the reference's greedy one from the same first piece.
        greedy = reference_greedy_word(reference, [*left, ids[0]], lang_id, engine.tokenizer, blanks.MAX_PIECES)
        if engine.tokenizer.ends_word(greedy[-1]):
            assert (
                reference_text_logprob(reference, [*left, *ids], lang_id)
                >= reference_text_logprob(reference, [*left, *greedy], lang_id) - 1e-5
            )
        # ... and one at least as probable as any of its BEAM most probable second pieces that ends a word.
        if len(ids) > 1:
            seconds = reference_next_pieces(reference, [*left, ids[0]], lang_id, blanks.BEAM)
            ended = [more for piece, more in seconds if engine.tokenizer.ends_word(piece)]
            word = reference_text_logprob(reference, [*left, *ids], lang_id)
            first = reference_text_logprob(reference, [*left, ids[0]], lang_id)
            assert all(word >= first + more - 1e-5 for more in ended)
    single = [i for i in first_pieces.tolist() if engine.tokenizer.ends_word(i)]
    assert [ids[0] for ids in proposed if len(ids) == 1] == single  # a first piece that ends a word is one


def test_batched_scoring_equals_one_by_one(engine, fills):
    fill = fills["en"]["en"]
    left = Encoded(fill.input_ids[: fill.blank], "en", False)
    suffixes = [[*c.ids, *fill.input_ids[fill.blank + 1 :]] for c in fill.candidates]
    suffixes += [[c.ids[0]] for c in fill.candidates[:3]]  # one token, nothing after it: no model run
    with engine.session(left, reserve=1) as session:
        logits = engine.next_logits(session)
        batched = continuation_logprobs(engine.model, session.cache, logits, suffixes, 1, budget=10_000)
        alone = [continuation_logprobs(engine.model, session.cache, logits, [s], 1, budget=1)[0] for s in suffixes]
    for together, single, suffix in zip(batched, alone, suffixes, strict=True):
        assert together.shape == (len(suffix),)
        assert torch.allclose(together, single, atol=1e-5, rtol=0)


def test_the_left_context_runs_once_through_the_prefix_cache(engine):
    text = "The trains in <special1> ran late again ."
    engine.analyse(engine.encode(text, "de"))  # the page's own view of the text holds its left context
    misses = engine.prefix_cache.misses
    engine.fill(text, "de", top_k=5)
    assert engine.prefix_cache.misses == misses


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("No blank here .", "no blank"),
        ("Two <special1> and <special1> .", "2 blanks"),
        ("<special1> " + "word " * 80, "too far from the text's end"),
    ],
)
def test_bad_blanks_are_one_sentence(engine, text, sentence):
    with pytest.raises(ValueError, match=sentence):
        engine.fill(text, "en")


def test_a_fill_that_would_score_too_many_positions_is_one_sentence(engine, monkeypatch):
    monkeypatch.setattr(blanks, "MAX_SCORED_POSITIONS", 100)
    with pytest.raises(ValueError, match="tokens after it: .* over this demo's limit of 100. Shorten the text"):
        engine.fill(TEXTS["en"], "en")
    engine.fill("The weather in <special1>", "en", top_k=5)  # nothing after the blank: 1-4 positions each


def test_the_position_cap_counts_each_candidates_own_tokens_and_those_after_the_blank(monkeypatch):
    candidates, after_blank = [(7,), (8, 9, 10)], [2, 2]  # under two ids: (1 + 2) + (3 + 2), twice
    monkeypatch.setattr(blanks, "MAX_SCORED_POSITIONS", 16)
    blanks.check_work(candidates, after_blank)
    monkeypatch.setattr(blanks, "MAX_SCORED_POSITIONS", 15)
    with pytest.raises(ValueError, match="are 16 positions, over this demo's limit of 15"):
        blanks.check_work(candidates, after_blank)


def test_a_blank_at_the_end_still_counts_its_candidates_positions(engine, monkeypatch):
    monkeypatch.setattr(blanks, "MAX_SCORED_POSITIONS", 1)  # several candidates, each of a token or more
    with pytest.raises(ValueError, match="The blank has 0 tokens after it: .* over this demo's limit of 1."):
        engine.fill("The weather in <special1>", "en", top_k=5)


@pytest.mark.parametrize("text", ["<special1> ist kalt .", "Paris is the capital of <special1>"])
def test_a_blank_at_either_end_scores_as_the_reference(engine, reference, text):
    fill = engine.fill(text, "de", top_k=5, words=["Regenschirm"])
    for candidate in fill.candidates:
        expected = reference_text_logprob(reference, filled_ids(fill, candidate.ids), 0)
        assert candidate.logprob == pytest.approx(expected, abs=1e-5)


def test_bad_words_and_counts_are_one_sentence(engine):
    with pytest.raises(ValueError, match="at most 20"):
        engine.fill(TEXTS["en"], "en", words=[f"w{i}" for i in range(21)])
    with pytest.raises(ValueError, match="top-k must be between 1 and 50"):
        engine.fill(TEXTS["en"], "en", top_k=51)
    assert blanks.split_words(" Paris, New York ,, ") == ["Paris", "New York"]


@pytest.mark.parametrize("text", [TEXTS["en"], "Paris is the <special1> of France .", "<special1> ist kalt ."])
def test_the_hub_widget_reading_is_transformers_fill_mask_pipeline(engine, tiny_model, text):
    expected = reference_fill_mask(tiny_model[0], text, top_k=5)
    widget = engine.hub_widget_fill(text, top_k=5)
    assert [c.id for c in widget.candidates] == [row["token"] for row in expected]
    assert [c.prob for c in widget.candidates] == pytest.approx([row["score"] for row in expected], abs=1e-5)
