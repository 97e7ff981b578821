"""The logit lens, patching and the whole-text scores against transformers' XLMWithLMHeadModel (causal=True)."""

import math
from dataclasses import replace

import pytest
import torch

from tests.reference import hub_state_dict, random_reference
from xlm_demo.engine import Encoded, Engine
from xlm_demo.inside import lens
from xlm_demo.model.weights import build_model
from xlm_demo.model.xlm import XLMConfig

DEEP = XLMConfig(vocab_size=120, dim=64, n_layers=4, n_heads=4, n_langs=2, max_positions=48)  # k = 1, 2, 3 inside
IDS = [1, 17, 42, 99, 5, 63, 7, 118, 30, 12, 11]  # no <pad> (2): the reference would mask it
TEXT = "Die Katze schläft auf dem Sofa, weil es"


@pytest.fixture(scope="module")
def deep_reference():
    """transformers' model on random DEEP weights (four layers), without checkpoint files."""
    return random_reference(DEEP, seed=3)


@pytest.fixture(scope="module")
def model(deep_reference):
    return build_model(DEEP, hub_state_dict(deep_reference))


def reference_states(reference, ids, langs) -> tuple[torch.Tensor, ...]:
    """transformers' hidden states (L + 1 of them, each (1, T, C)) for one sequence and its per-position ids."""
    with torch.no_grad():
        output = reference.transformer(
            input_ids=torch.tensor([ids]), langs=torch.tensor([langs]), output_hidden_states=True
        )
    return output.hidden_states


def reference_probs(reference, hidden: torch.Tensor) -> torch.Tensor:
    """softmax(pred_layer.proj(hidden)): the reference's own output projection and bias read any hidden state."""
    with torch.no_grad():
        return reference.pred_layer.proj(hidden).softmax(-1)


def reference_layers(reference, hidden: torch.Tensor, first: int) -> torch.Tensor:
    """The reference's own layers `first` .. L - 1 run on a (1, T, C) hidden state, causally."""
    T, model = hidden.shape[1], reference.transformer
    mask = torch.arange(T)[None, None, :] <= torch.arange(T)[None, :, None]  # (1, T, T)
    with torch.no_grad():
        for i in range(first, model.n_layers):
            hidden = model.layer_norm1[i](hidden + model.attentions[i](hidden, mask)[0])
            hidden = model.layer_norm2[i](hidden + model.ffns[i](hidden))
    return hidden


@pytest.mark.parametrize("lang_id", [0, 1])
def test_every_layer_reads_as_the_reference_hidden_state(model, deep_reference, lang_id):
    with torch.no_grad():
        states = lens.layer_states(model, torch.tensor([IDS]), torch.tensor([[lang_id]]))
        got = lens.read(model, states[0]).exp()  # (L + 1, V)
    hidden = reference_states(deep_reference, IDS, [lang_id] * len(IDS))
    assert len(hidden) == DEEP.n_layers + 1 == got.shape[0]
    for layer, h in enumerate(hidden):
        torch.testing.assert_close(got[layer], reference_probs(deep_reference, h[0, -1]), atol=1e-5, rtol=0)


def test_mixed_ids_read_as_the_reference_fed_the_same_langs(model, deep_reference):
    langs = [1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0]
    with torch.no_grad():
        states = lens.layer_states(model, torch.tensor([IDS]), torch.tensor([langs]))
        got = lens.read(model, states[0]).exp()
    for layer, h in enumerate(reference_states(deep_reference, IDS, langs)):
        torch.testing.assert_close(got[layer], reference_probs(deep_reference, h[0, -1]), atol=1e-5, rtol=0)


def patched(model, ids=IDS) -> torch.Tensor:
    """(2, L + 1, V) patched final distributions: row 0 the German id (0), row 1 the English id (1)."""
    n = len(ids)
    cache = model.new_cache(2, n)
    with torch.no_grad():
        states = lens.layer_states(model, torch.tensor([ids] * 2), torch.tensor([[0], [1]]), cache)
        return lens.read(model, lens.patch_context(model, states, cache)).exp()


@pytest.mark.parametrize("own", [0, 1])
def test_patching_at_every_k_matches_the_reference_layers(model, deep_reference, own):
    """From layer k on the last position attends over the other id's earlier positions: the reference's own layers
    run from layer k on a hidden state whose earlier positions are the other id's and whose last is its own."""
    other = 1 - own
    got = patched(model)[own]
    mine = reference_states(deep_reference, IDS, [own] * len(IDS))
    theirs = reference_states(deep_reference, IDS, [other] * len(IDS))
    for k in range(DEEP.n_layers + 1):
        spliced = theirs[k].clone()
        spliced[0, -1] = mine[k][0, -1]
        expected = reference_probs(deep_reference, reference_layers(deep_reference, spliced, k)[0, -1])
        torch.testing.assert_close(got[k], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("own", [0, 1])
def test_patching_ends_unchanged_and_starts_as_the_other_id_on_the_earlier_positions(model, deep_reference, own):
    got = patched(model)[own]
    alone = reference_states(deep_reference, IDS, [own] * len(IDS))[-1][0, -1]
    torch.testing.assert_close(got[-1], reference_probs(deep_reference, alone), atol=1e-5, rtol=0)  # k = L: unchanged
    mixed = [1 - own] * (len(IDS) - 1) + [own]  # k = 0: every earlier position under the other id from the start
    expected = reference_probs(deep_reference, reference_states(deep_reference, IDS, mixed)[-1][0, -1])
    torch.testing.assert_close(got[0], expected, atol=1e-5, rtol=0)
    assert (got[0] - got[-1]).abs().max() > 1e-4  # the earlier positions' id does move the prediction


def test_patching_a_text_of_the_start_token_alone_changes_nothing(model):
    got = patched(model, ids=[1])
    for own in (0, 1):
        torch.testing.assert_close(got[own], got[own, -1].expand_as(got[own]), atol=1e-6, rtol=0)


# The engine: a hub-layout checkpoint written in the test, loaded as the demo loads it.


def test_logit_lens_matches_the_reference_under_both_ids(engine, tiny_model):
    reference = tiny_model[1]
    for lang, lang_id in engine.lang2id.items():
        encoded = engine.encode(TEXT, lang)
        result = lens.logit_lens(engine, encoded, top_k=5)
        hidden = reference_states(reference, encoded.input_ids, [lang_id] * len(encoded.input_ids))
        assert [r.layer for r in result.layers] == list(range(len(hidden)))
        final = reference_probs(reference, hidden[-1][0, -1])
        for reading, h in zip(result.layers, hidden, strict=True):
            probs = reference_probs(reference, h[0, -1])
            assert [c.id for c in reading.candidates] == probs.topk(5).indices.tolist()
            for candidate in reading.candidates:
                assert candidate.prob == pytest.approx(float(probs[candidate.id]), abs=1e-5)
            assert reading.entropy == pytest.approx(float(-(probs * probs.log()).sum()), abs=1e-4)
            assert reading.kl_to_final == pytest.approx(float((final * (final.log() - probs.log())).sum()), abs=1e-4)
            target = int(final.argmax())  # by default the final top-1
            assert reading.target.id == target
            assert reading.target.prob == pytest.approx(float(probs[target]), abs=1e-5)
            assert reading.target.rank == int((probs > probs[target]).sum()) + 1
        assert result.layers[-1].kl_to_final == pytest.approx(0.0, abs=1e-6)


def test_last_layer_equals_predict(engine):
    for lang in engine.lang2id:
        distribution = engine.predict(TEXT, lang, top_k=8)
        last = lens.logit_lens(engine, engine.encode(TEXT, lang), top_k=8).layers[-1]
        assert [c.id for c in last.candidates] == [c.id for c in distribution.candidates]
        for ours, theirs in zip(last.candidates, distribution.candidates, strict=True):
            assert ours.prob == pytest.approx(theirs.prob, abs=1e-5)
        assert last.entropy == pytest.approx(distribution.entropy, abs=1e-5)


def test_a_chosen_target_is_followed_through_every_layer(engine, tiny_model):
    encoded = engine.encode(TEXT, "en")
    result = lens.logit_lens(engine, encoded, target=42)
    hidden = reference_states(tiny_model[1], encoded.input_ids, [1] * len(encoded.input_ids))
    for reading, h in zip(result.layers, hidden, strict=True):
        probs = reference_probs(tiny_model[1], h[0, -1])
        assert reading.target.id == 42
        assert reading.target.prob == pytest.approx(float(probs[42]), abs=1e-5)
        assert reading.target.rank == int((probs > probs[42]).sum()) + 1


def test_logit_lens_of_a_mixed_id_text_matches_the_reference_fed_the_same_langs(engine, tiny_model):
    typed = engine.encode(TEXT, "de")
    encoded = engine.append(typed, [42, 17, 99], id_langs=["en", "en", "en"])  # a continuation under the English id
    assert encoded.langs  # each position carries its own id
    result = lens.logit_lens(engine, encoded, top_k=3)
    langs = [engine.lang2id[lang] for lang in encoded.position_langs]
    hidden = reference_states(tiny_model[1], encoded.input_ids, langs)
    for reading, h in zip(result.layers, hidden, strict=True):
        probs = reference_probs(tiny_model[1], h[0, -1])
        assert [c.id for c in reading.candidates] == probs.topk(3).indices.tolist()
        assert reading.candidates[0].prob == pytest.approx(float(probs.max()), abs=1e-5)


def test_an_english_french_checkpoint_follows_french_subwords(tmp_path):
    from tests.checkpoints import ENFR, write_hub_checkpoint

    write_hub_checkpoint(tmp_path, lang2id=ENFR)
    enfr = Engine.load(str(tmp_path), device="cpu")
    result = lens.lens_view(enfr, enfr.encode("Le chat dort sur le canapé", "fr"))
    assert result.focus == "fr" and set(result.lenses) == {"en", "fr"}
    assert set(result.lenses["fr"].layers[-1].subword_mass) == {"en", "fr", "shared"}
    assert lens.parting_layer(result)[1] == "en"
    assert {p.other for p in result.patching.values()} == {"en", "fr"}


@pytest.mark.parametrize("target", [-1, 10**6])
def test_a_target_outside_the_vocabulary_is_one_sentence(engine, target):
    with pytest.raises(ValueError, match="the target must be a token id between 0 and"):
        lens.logit_lens(engine, engine.encode(TEXT, "en"), target=target)


def test_the_view_runs_the_same_tokens_under_each_id_as_the_lens_does(engine):
    encoded = engine.encode(TEXT, "de")
    result = lens.lens_view(engine, encoded, top_k=5)
    assert list(result.lenses) == list(engine.lang2id)
    for lang, seen in result.lenses.items():
        alone = lens.logit_lens(engine, Encoded(encoded.input_ids, lang, False), top_k=5, target=result.columns[0].id)
        for ours, theirs in zip(seen.layers, alone.layers, strict=True):
            assert [c.id for c in ours.candidates] == [c.id for c in theirs.candidates]
            assert ours.entropy == pytest.approx(theirs.entropy, abs=1e-5)
            assert ours.target.id == theirs.target.id and ours.target.rank == theirs.target.rank
            assert ours.target.prob == pytest.approx(theirs.target.prob, abs=1e-5)
            assert ours.subword_mass == pytest.approx(theirs.subword_mass, abs=1e-5)


def test_the_views_patching_ends_at_each_ids_own_prediction_and_starts_from_the_others_context(engine, tiny_model):
    encoded = engine.encode(TEXT, "en")
    result = lens.lens_view(engine, encoded)
    for lang, patching in result.patching.items():
        mixed = [engine.lang2id[patching.other]] * (len(encoded.input_ids) - 1) + [engine.lang2id[lang]]
        probs = reference_probs(tiny_model[1], reference_states(tiny_model[1], encoded.input_ids, mixed)[-1][0, -1])
        first = patching.runs[0]  # k = 0: every earlier position under the other id
        assert [c.id for c in first.candidates] == probs.topk(len(first.candidates)).indices.tolist()
        assert first.candidates[0].prob == pytest.approx(float(probs.max()), abs=1e-5)
        assert patching.other != lang
        assert [r.layer for r in patching.runs] == list(range(engine.model.config.n_layers + 1))
        last = patching.runs[-1]
        assert last.kl_to_own == pytest.approx(0.0, abs=1e-6)
        assert last.subword_mass == pytest.approx(result.lenses[lang].layers[-1].subword_mass, abs=1e-6)
        assert [c.id for c in last.candidates] == [c.id for c in result.lenses[lang].layers[-1].candidates[:6]]


def test_subword_mass_is_compares_on_the_same_tokens(engine):
    encoded = engine.encode(TEXT, "de")
    result = lens.lens_view(engine, encoded)
    comparison = engine.compare_encoded([Encoded(encoded.input_ids, lang, False) for lang in engine.lang2id])
    for lang, mass in comparison.subword_mass.items():
        assert result.lenses[lang].layers[-1].subword_mass == pytest.approx(mass, abs=1e-5)
        assert sum(mass.values()) <= 1 + 1e-6


def test_heatmap_columns_and_grid(engine):
    result = lens.lens_view(engine, engine.encode(TEXT, "en"), target=42)
    ids = [c.id for c in result.columns]
    assert ids[0] == 42 and len(ids) == len(set(ids))
    for lang, seen in result.lenses.items():
        final_top = [c.id for c in seen.layers[-1].candidates[: lens.HEATMAP_TOKENS]]
        assert set(final_top) <= set(ids)
        for layer, row in enumerate(result.grid[lang]):
            assert [t.id for t in row] == ids
            assert row[0] == seen.layers[layer].target  # the target's own column


def test_with_target_equals_computing_with_that_target(engine):
    encoded = engine.encode(TEXT, "en")
    first = lens.lens_view(engine, encoded)
    chosen = first.columns[3].id
    switched = lens.with_target(first, chosen)
    direct = lens.lens_view(engine, encoded, target=chosen)
    for lang in engine.lang2id:
        for ours, theirs in zip(switched.lenses[lang].layers, direct.lenses[lang].layers, strict=True):
            assert ours.target.id == theirs.target.id == chosen
            assert ours.target.prob == pytest.approx(theirs.target.prob, abs=1e-6)
            assert ours.target.rank == theirs.target.rank
    with pytest.raises(ValueError, match="one of the heatmap's tokens"):
        lens.with_target(first, -5)


def test_the_whole_text_scores_match_the_reference(engine, tiny_model):
    encoded = engine.encode(TEXT, "de")
    scores = lens.lens_view(engine, encoded).scores
    ids = torch.tensor([encoded.input_ids])
    for lang, lang_id in engine.lang2id.items():
        with torch.no_grad():
            logits = tiny_model[1](input_ids=ids, langs=torch.full_like(ids, lang_id)).logits[0, :-1]
        picked = logits.log_softmax(-1).gather(-1, ids[0, 1:, None])[:, 0]
        assert scores[lang].perplexity == pytest.approx(math.exp(-float(picked.mean())), rel=1e-5)
        assert scores[lang].ranks == [int((row > row[t]).sum()) + 1 for row, t in zip(logits, ids[0, 1:], strict=True)]


def test_a_text_of_the_start_token_alone_has_no_perplexity(engine):
    result = lens.lens_view(engine, engine.encode("", "en"))
    assert all(s.perplexity is None and s.ranks == [] for s in result.scores.values())
    assert [r.layer for r in result.lenses["en"].layers] == list(range(engine.model.config.n_layers + 1))


def test_what_the_prefix_cache_holds_is_read_not_run_again(tiny_model):
    """The page ran the text (its prefix is cached); the lens, patching and scores are the same as from scratch."""
    cold = Engine.load(str(tiny_model[0]), device="cpu")
    warm = Engine.load(str(tiny_model[0]), device="cpu")
    encoded = warm.encode(TEXT, "en")
    warm.analyse(encoded)  # what the page's own view runs
    warm.analyse(Encoded(encoded.input_ids, "de", False))
    hits = warm.prefix_cache.hits
    ours, alone = lens.lens_view(warm, encoded), lens.logit_lens(warm, encoded)
    assert warm.prefix_cache.hits - hits >= 3 * (len(encoded.input_ids) - 2)  # every position but the last, thrice
    theirs, alone_cold = lens.lens_view(cold, encoded), lens.logit_lens(cold, encoded)
    for lang in warm.lang2id:
        for a, b in zip(ours.lenses[lang].layers, theirs.lenses[lang].layers, strict=True):
            assert [c.id for c in a.candidates] == [c.id for c in b.candidates]
            assert a.candidates[0].prob == pytest.approx(b.candidates[0].prob, abs=1e-5)
        for a, b in zip(ours.patching[lang].runs, theirs.patching[lang].runs, strict=True):
            assert a.kl_to_own == pytest.approx(b.kl_to_own, abs=1e-5)
        assert ours.scores[lang].perplexity == pytest.approx(theirs.scores[lang].perplexity, rel=1e-5)
        assert ours.scores[lang].ranks == theirs.scores[lang].ranks
    assert alone.layers[-1].entropy == pytest.approx(alone_cold.layers[-1].entropy, abs=1e-5)


def reading(layer: int, german: float) -> lens.LayerReading:
    target = lens.Target(5, "x", 0.1, 1)
    return lens.LayerReading(layer, 1.0, 0.0, target, {"de": german, "en": 0.0, "shared": 0.0}, [])


def lens_of(lang: str, german: list[float]) -> lens.Lens:
    return lens.Lens([1], lang, [reading(layer, g) for layer, g in enumerate(german)])


@pytest.mark.parametrize(
    "de, en, expected",
    [
        ([0.0, 0.1, 0.3, 0.6, 0.8], [0.0, 0.1, 0.1, 0.1, 0.1], 3),  # lead 0.7 at the end; 0.5 >= 0.35 at layer 3
        ([0.0, 0.4, 0.4, 0.4, 0.4], [0.0, 0.0, 0.0, 0.0, 0.0], 1),
        ([0.2, 0.2, 0.2, 0.2, 0.22], [0.2, 0.2, 0.2, 0.2, 0.2], None),  # the German id adds under MIN_LEAD
        ([0.1, 0.1, 0.1, 0.1, 0.1], [0.1, 0.3, 0.5, 0.5, 0.5], None),  # English leads
    ],
)
def test_parting_layer(de, en, expected):
    view = lens.LensView([1], "de", "de", {"de": lens_of("de", de), "en": lens_of("en", en)}, [], {}, {}, {})
    assert lens.parting_layer(view) == (expected, "en")
    assert lens.parting_layer(replace(view, focus=None)) == (None, None)  # no word lists, nothing to follow


# The bundled model: what the lens shows of a model that knows English from German (pinned behaviour).


def texts_and_halves(sentences):
    """Each sentence, and its first half: one prediction after a full stop, one mid-sentence."""
    return [text for s in sentences for text in (s, " ".join(s.split()[: len(s.split()) // 2]))]


@pytest.mark.parametrize(("text_lang", "kind"), [("de", "de"), ("en", "en")])
def test_bundled_own_subwords_weigh_more_at_the_last_layer_under_the_texts_own_id(bundled_engine, text_lang, kind):
    """German text's German-subword mass at the last layer is higher under de than under en; English's likewise."""
    from tests.model.test_bundled import ENGLISH, GERMAN

    other = "en" if text_lang == "de" else "de"
    for text in texts_and_halves(GERMAN if text_lang == "de" else ENGLISH):
        result = lens.lens_view(bundled_engine, bundled_engine.encode(text, text_lang))
        own = result.lenses[text_lang].layers[-1].subword_mass[kind]
        wrong = result.lenses[other].layers[-1].subword_mass[kind]
        assert own > wrong, f"{text!r}: {own:.3f} under {text_lang}, {wrong:.3f} under {other}"


def test_bundled_ids_part_inside_the_model_for_german_text(bundled_engine):
    """Mid-sentence German: the embeddings read alike under both ids; the German id's lead appears in the blocks."""
    from tests.model.test_bundled import GERMAN

    for text in texts_and_halves(GERMAN)[1::2]:
        result = lens.lens_view(bundled_engine, bundled_engine.encode(text, "de"))
        parting, other = lens.parting_layer(result)
        assert result.focus == "de" and other == "en"
        assert parting is not None and parting >= 1, text
