"""The engine's answers against the reference model and tokenizer, run the way the checkpoint was trained."""

import pytest
import torch
from transformers import XLMTokenizer

from tests.reference import folder_tokenizer, reference_logits, trained_ids
from tests.reference import reference_ids as reference_ids_with_specials
from xlm_demo.engine import Engine
from xlm_demo.engine.forward import padded_groups
from xlm_demo.engine.results import START_ID
from xlm_demo.engine.sampling import GREEDY, SamplingParams

TEXTS = {
    "en": "The President's house was built in 1792, and it is still there.",
    "de": "Die Katze des Präsidenten schläft über dem Ofen, weil es kalt ist.",
}


@pytest.fixture(scope="module")
def reference_tokenizer(tiny_model):
    return folder_tokenizer(tiny_model[0], {"de": 0, "en": 1})


@pytest.mark.parametrize("lang", ["en", "de"])
def test_encode_matches_reference(engine, reference_tokenizer, lang):
    assert engine.encode(TEXTS[lang], lang).input_ids == trained_ids(reference_tokenizer, TEXTS[lang], lang)


def test_cased_vocabulary_overrides_the_configs_lowercasing(engine):
    assert engine.tokenizer.lowercase is False


@pytest.mark.parametrize("lang", ["en", "de"])
def test_predict_matches_reference(engine, reference, reference_tokenizer, lang):
    ids = trained_ids(reference_tokenizer, TEXTS[lang], lang)
    expected = reference_logits(reference, ids, engine.lang2id[lang])[-1].softmax(-1)
    distribution = engine.predict(TEXTS[lang], lang, top_k=10)
    top = expected.topk(10)
    assert [c.id for c in distribution.candidates] == top.indices.tolist()
    assert max(abs(c.prob - p) for c, p in zip(distribution.candidates, top.values.tolist(), strict=True)) < 1e-5
    entropy = float(-(expected * expected.log()).sum())
    assert distribution.entropy == pytest.approx(entropy, abs=1e-4)
    assert distribution.input_ids == ids


def test_score_matches_reference(engine, reference, reference_tokenizer):
    ids = trained_ids(reference_tokenizer, TEXTS["de"], "de")
    logprobs = reference_logits(reference, ids, 0).log_softmax(-1)
    encoded, scores = engine.score(TEXTS["de"], "de")
    assert encoded.input_ids == ids
    assert scores[0].prob is None and scores[0].rank is None
    for position in range(1, len(ids)):
        row = logprobs[position - 1]
        assert scores[position].id == ids[position]
        assert scores[position].logprob == pytest.approx(float(row[ids[position]]), abs=1e-5)
        assert scores[position].rank == int((row > row[ids[position]]).sum()) + 1


def test_greedy_continuation_matches_reference_loop(engine, reference, reference_tokenizer):
    ids = trained_ids(reference_tokenizer, TEXTS["en"], "en")
    expected = list(ids)
    for _ in range(12):  # no cache: the whole sequence again each step, the chosen token fed back
        expected.append(int(reference_logits(reference, expected, 1)[-1].argmax()))
    steps = list(engine.generate(engine.encode(TEXTS["en"], "en"), 12, GREEDY))
    assert [s.id for s in steps] == expected[len(ids) :]
    assert all(s.rank == 1 for s in steps)


def test_sampling_is_repeatable_with_a_seed(engine):
    encoded = engine.encode(TEXTS["de"], "de")
    runs = [[s.id for s in engine.generate(encoded, 15, SamplingParams(temperature=1.2, seed=s))] for s in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_sampled_tokens_respect_top_k(engine):
    encoded = engine.encode(TEXTS["en"], "en")
    for step in engine.generate(encoded, 10, SamplingParams(temperature=2.0, top_k=3, seed=1), top_k=10):
        assert step.rank <= 3


def test_compare_matches_reference_per_language(engine, reference, reference_tokenizer):
    text = TEXTS["en"]
    comparison = engine.compare(text, top_k=5)
    logprobs = {}
    for lang, lang_id in engine.lang2id.items():
        ids = trained_ids(reference_tokenizer, text, lang)
        logprobs[lang] = reference_logits(reference, ids, lang_id)[-1].log_softmax(-1)
        got = comparison.distributions[lang]
        assert [c.id for c in got.candidates] == logprobs[lang].topk(5).indices.tolist()
    kl = torch.nn.functional.kl_div(logprobs["en"], logprobs["de"], log_target=True, reduction="sum")
    assert comparison.kl["de||en"] == pytest.approx(float(kl), abs=1e-5)


def test_long_text_keeps_its_last_tokens(engine, reference_tokenizer):
    text = " ".join([TEXTS["en"]] * 20)
    full = trained_ids(reference_tokenizer, text, "en")
    encoded = engine.encode(text, "en")
    assert encoded.truncated
    assert len(encoded.input_ids) == engine.max_positions
    assert encoded.input_ids == [START_ID, *full[-(engine.max_positions - 1) :]]
    assert engine.predict(text, "en").truncated


def test_empty_text_predicts_after_the_start_token(engine, reference):
    distribution = engine.predict("", "en", top_k=3)
    assert distribution.input_ids == [START_ID]
    expected = reference_logits(reference, [START_ID], 1)[-1].softmax(-1).topk(3).indices.tolist()
    assert [c.id for c in distribution.candidates] == expected


def test_cached_session_equals_fresh_prediction(engine):
    encoded = engine.encode(TEXTS["en"], "en")
    steps = list(engine.generate(encoded, 6, GREEDY, top_k=5))
    longer = engine.append(encoded, [s.id for s in steps[:-1]])
    fresh = engine.predict_encoded(longer, top_k=5)
    assert [c.id for c in steps[-1].distribution.candidates] == [c.id for c in fresh.candidates]
    for a, b in zip(steps[-1].distribution.candidates, fresh.candidates, strict=True):
        assert a.prob == pytest.approx(b.prob, abs=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e: e.predict("x", "fr"), r"language must be one of de \(German\), en \(English\)"),
        (lambda e: e.predict("x", "en", top_k=0), "top-k must be between 1 and 1000"),
        (lambda e: list(e.generate(e.encode("x", "en"), 0)), "max new tokens"),
        (lambda e: list(e.generate(e.encode("x", "en"), 10_000)), "max new tokens"),
    ],
)
def test_bad_requests_are_one_sentence(engine, call, message):
    with pytest.raises(ValueError, match=message):
        call(engine)


def test_float16_on_cpu_is_refused(tiny_model):
    with pytest.raises(ValueError, match="float16 is for GPUs"):
        Engine.load(str(tiny_model[0]), device="cpu", dtype="float16")


@pytest.mark.parametrize("options", [{"dtype": "bfloat16"}, {"quantize": "int8-weights"}])
def test_fewer_bytes_per_weight_stay_close_to_the_reference(tiny_model, reference, reference_tokenizer, options):
    """bfloat16 weights, or int8 weights per channel, on bfloat16 products, float32 activations between them."""
    fewer = Engine.load(str(tiny_model[0]), device="cpu", **options)
    assert fewer.dtype == torch.float32 and fewer.products == "torch"
    assert fewer.weights_dtypes == {torch.bfloat16} or fewer.quantized
    for lang, text in TEXTS.items():
        expected = reference_logits(reference, trained_ids(reference_tokenizer, text, lang), fewer.lang2id[lang])
        probs = expected[-1].softmax(-1)
        got = fewer.predict(text, lang, top_k=50).candidates
        assert max(abs(c.prob - float(probs[c.id])) for c in got) < 1e-2
        assert float(probs[got[0].id]) >= float(probs.max()) - 1e-2  # its top candidate is the reference's, or near
    steps = list(fewer.generate(fewer.encode(TEXTS["en"], "en"), 5))  # the cached path runs in the same precision
    assert len(steps) == 5 and all(0 < s.prob <= 1 for s in steps)


@pytest.mark.parametrize("text", [TEXTS["de"], "Die Katze </s> schläft <special1>, weil<s>es kalt ist"])
def test_transformers_defaults_match_the_reference_run_as_the_card_says(tiny_model, engine, text):
    """The fidelity view's "wrong" run equals transformers' defaults: causal=false, encode(), lowercasing."""
    from tests.reference import random_reference

    path, reference = tiny_model
    tokenizer = XLMTokenizer(
        vocab_file=str(path / "vocab.json"),
        merges_file=str(path / "merges.txt"),
        do_lowercase_and_remove_accent=True,
        lang2id={"de": 0, "en": 1},
        id2lang={0: "de", 1: "en"},
    )
    ids = tokenizer.encode(text)  # <s> … </s>, English rules, lowercased, the specials in the text read
    bidirectional = random_reference(engine.model.config, seed=0, causal=False)
    bidirectional.load_state_dict(reference.state_dict())
    expected = reference_logits(bidirectional, ids, 0)[-1].softmax(-1)
    got = engine.transformers_defaults(text, "de", top_k=5)
    assert got.input_ids == ids
    assert [c.id for c in got.candidates] == expected.topk(5).indices.tolist()
    assert got.candidates[0].prob == pytest.approx(float(expected.max()), abs=1e-5)


def test_subword_kinds_follow_the_word_lists(engine, reference_tokenizer, tmp_path):
    from xlm_demo.model.subwords import mass_by_kind, subword_masks

    (tmp_path / "de.txt").write_text("Katze\nStraße\nRegierung\n", encoding="utf-8")
    (tmp_path / "en.txt").write_text("weather\nhouse\nRegierung\n", encoding="utf-8")
    masks = subword_masks(engine.tokenizer, ("de", "en"), tmp_path)

    def ids(words, lang):
        return {
            i
            for w in words
            for i in reference_tokenizer.convert_tokens_to_ids(reference_tokenizer._tokenize(w, lang=lang))
        }

    german, english = ids(["Katze", "Straße", "Regierung"], "de"), ids(["weather", "house", "Regierung"], "en")
    for kind, expected in (("de", german - english), ("en", english - german), ("shared", german & english)):
        assert set(masks[kind].nonzero()[:, 0].tolist()) == expected - {3}
    uniform = torch.full((engine.tokenizer.vocab_size,), 1 / engine.tokenizer.vocab_size)
    mass = mass_by_kind(uniform, masks)
    assert mass["shared"] == pytest.approx(len(german & english - {3}) / engine.tokenizer.vocab_size)


def test_comparison_reports_subword_mass(engine):
    comparison = engine.compare("Die Katze schläft", top_k=5)
    for lang, mass in comparison.subword_mass.items():
        assert set(mass) == {"de", "en", "shared"} and 0 <= sum(mass.values()) <= 1 + 1e-6, lang


def test_int8_stays_close_to_float32(tiny_model, engine):
    quantized = Engine.load(str(tiny_model[0]), device="cpu", quantize="int8")
    assert quantized.quantized and not engine.quantized
    for lang, text in TEXTS.items():
        exact = {c.id: c.prob for c in engine.predict(text, lang, top_k=50).candidates}
        approx = quantized.predict(text, lang, top_k=50).candidates
        assert max(abs(c.prob - exact.get(c.id, 0.0)) for c in approx) < 1e-2
    encoded = engine.encode(TEXTS["en"], "en")
    exact_steps = [s.id for s in engine.generate(encoded, 5)]
    assert len([s.id for s in quantized.generate(encoded, 5)]) == len(exact_steps)  # every path runs in int8
    assert quantized.transformers_defaults(TEXTS["de"], "de", top_k=3).candidates


def test_int8_is_refused_off_the_cpu_path(tiny_model):
    with pytest.raises(ValueError, match="quantize must be none or int8"):
        Engine.load(str(tiny_model[0]), device="cpu", quantize="int4")


def test_predict_many_equals_one_by_one_across_lengths(engine):
    texts = ["Die", "The cat sat on the mat and looked at the dog", "Das Wetter in Berlin ist " * 40, ""]
    encodings = [engine.encode(text, lang) for text in texts for lang in ("en", "de")]
    together = engine.predict_many([(encoded, 5) for encoded in encodings])
    for encoded, batched in zip(encodings, together, strict=True):
        alone = engine.predict_encoded(encoded, top_k=5)
        assert [c.id for c in batched.candidates] == [c.id for c in alone.candidates]
        assert [c.prob for c in batched.candidates] == pytest.approx([c.prob for c in alone.candidates], abs=1e-5)


@pytest.mark.parametrize("lengths", [[5, 500, 7, 6, 300, 2], [512] * 4, [1], []])
def test_padded_groups_cover_every_request_within_the_budget(lengths):
    groups = padded_groups(lengths, budget=1024)
    assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
    for group in groups:
        assert len(group) == 1 or len(group) * max(lengths[i] for i in group) <= 1024


def test_a_continuation_under_another_language_id_matches_the_reference(engine, reference):
    text = engine.encode(TEXTS["en"], "en")
    mixed = engine.append(text, [20, 21, 22], id_langs=["de"] * 3)
    assert mixed.position_langs == ["en"] * len(text.input_ids) + ["de"] * 3
    langs = torch.tensor([[engine.lang2id[lang] for lang in mixed.position_langs]])
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor([mixed.input_ids]), langs=langs).logits[0]
    analysis = engine.analyse(mixed, top_k=5)
    probs = expected[-1].softmax(-1)
    assert all(abs(c.prob - float(probs[c.id])) < 1e-5 for c in analysis.next_token.candidates)
    logprobs = expected[:-1].log_softmax(-1)
    for position, score in enumerate(analysis.scores[1:], start=1):
        assert score.logprob == pytest.approx(float(logprobs[position - 1, mixed.input_ids[position]]), abs=1e-5)
    uniform = engine.analyse(engine.append(text, [20, 21, 22]), top_k=5).next_token
    assert abs(uniform.candidates[0].prob - probs[uniform.candidates[0].id]) > 1e-4  # the ids make a difference


def test_generate_feeds_new_tokens_with_the_continuation_language(engine, reference):
    text = engine.encode(TEXTS["en"], "en", reserve=4)
    steps = list(engine.generate(text, 4, GREEDY, lang="de"))
    ids = text.input_ids + [step.id for step in steps]
    langs = [engine.lang2id["en"]] * len(text.input_ids) + [engine.lang2id["de"]] * len(steps)
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor([ids]), langs=torch.tensor([langs])).logits[0]
    for n, step in enumerate(steps):
        probs = expected[len(text.input_ids) - 1 + n].softmax(-1)
        assert step.prob == pytest.approx(float(probs[step.id]), abs=1e-5)


# A typed </s> between sentences, as in training, and the mask token <special1> where a word was.
WITH_SPECIALS = {
    "en": "The house was built in 1792. </s> It is still there, <special1> old.</s>",
    "de": "</s>Die Katze schläft. </s> Sie ist <special1>, weil es kalt ist. </s>",
}


@pytest.mark.parametrize("lang", ["en", "de"])
def test_typed_specials_are_fed_as_the_reference_reads_them(engine, reference, reference_tokenizer, lang):
    """The ids are transformers' (specials split out, the language's rules between); every probability,
    the next token's after the typed </s> included, is the reference's for those ids."""
    text = WITH_SPECIALS[lang]
    encoded = engine.encode(text, lang)
    assert encoded.input_ids == [START_ID, *reference_ids_with_specials(reference_tokenizer, text, lang)]
    assert encoded.input_ids[-1] == 1 and 5 in encoded.input_ids
    analysis = engine.analyse(encoded, top_k=20)
    logprobs = reference_logits(reference, encoded.input_ids, engine.lang2id[lang]).log_softmax(-1)  # (T, V)
    top = logprobs[-1].topk(20)
    assert [c.id for c in analysis.next_token.candidates] == top.indices.tolist()
    assert [c.prob for c in analysis.next_token.candidates] == pytest.approx(top.values.exp().tolist(), abs=1e-5)
    targets = torch.tensor(encoded.input_ids[1:])
    expected = logprobs[:-1].gather(-1, targets[:, None])[:, 0].exp()
    assert [s.prob for s in analysis.scores[1:]] == pytest.approx(expected.tolist(), abs=1e-5)


@pytest.mark.parametrize("lang", ["en", "de"])
def test_literal_specials_are_the_characters(engine, reference_tokenizer, lang):
    text = WITH_SPECIALS[lang]
    encoded = engine.encode(text, lang, literal=True)
    assert encoded.input_ids == trained_ids(reference_tokenizer, text, lang)  # _tokenize of the whole text
    assert encoded.input_ids.count(1) == 1 and 5 not in encoded.input_ids


def test_decode_leaves_out_the_start_token_and_shows_typed_specials(engine):
    text = "Es war einmal. </s> Once upon a time <special1>"
    encoded = engine.encode(text, "de")
    assert engine.decode(encoded.input_ids, "de") == text
    assert engine.encode(engine.decode(encoded.input_ids, "de"), "de") == encoded
    assert engine.decode(engine.encode(text, "de", literal=True).input_ids, "de", literal=True).startswith("Es war")
