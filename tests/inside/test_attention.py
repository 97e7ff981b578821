"""Attention weights per layer and head against transformers' output_attentions (causal=True), both language ids."""

import pytest
import torch

from xlm_demo.inside.attention import attention, attention_by_lang

TEXT = "Die Katze schläft, weil es kalt ist und der Ofen aus ist."


def reference_attentions(reference, ids: list[int], lang_ids: int | list[int]) -> torch.Tensor:
    """(layers, heads, T, T) attention probabilities of transformers' model for one sequence, one id or one each."""
    input_ids = torch.tensor([ids])
    langs = torch.tensor([lang_ids]) if isinstance(lang_ids, list) else torch.full_like(input_ids, lang_ids)
    with torch.no_grad():
        output = reference(input_ids=input_ids, langs=langs, output_attentions=True)
    return torch.stack(output.attentions)[:, 0]


@pytest.mark.parametrize("lang", ["en", "de"])
def test_every_position_matches_reference(engine, tiny_model, lang):
    encoded = engine.encode(TEXT, lang)
    expected = reference_attentions(tiny_model[1], encoded.input_ids, engine.lang2id[lang])  # (L, H, T, T)
    assert len(encoded.input_ids) > 10
    for position in range(len(encoded.input_ids)):
        got = attention(engine, encoded, position)
        assert got.weights.shape == (2, 4, position + 1)
        torch.testing.assert_close(got.weights, expected[:, :, position, : position + 1], atol=1e-5, rtol=0)


def test_default_is_the_last_position_and_rows_sum_to_one(engine):
    encoded = engine.encode(TEXT, "en")
    got = attention(engine, encoded)
    assert got.position == len(encoded.input_ids) - 1
    torch.testing.assert_close(got.weights.sum(-1), torch.ones(2, 4), atol=1e-6, rtol=0)
    assert attention(engine, encoded, 0).weights.flatten().tolist() == [1.0] * 8  # the start token sees itself


def test_both_ids_in_one_batch_match_each_alone(engine, tiny_model):
    encoded = engine.encode(TEXT, "de")
    both = attention_by_lang(engine, encoded, 6)
    for lang in ("de", "en"):
        expected = reference_attentions(tiny_model[1], encoded.input_ids, engine.lang2id[lang])[:, :, 6, :7]
        torch.testing.assert_close(both[lang].weights, expected, atol=1e-5, rtol=0)
        assert both[lang].input_ids == encoded.input_ids  # the same tokens: only the id differs
    assert (both["en"].weights - both["de"].weights).abs().max() > 1e-4


def test_a_continuation_under_another_id_matches_reference(engine, tiny_model):
    encoded = engine.append(engine.encode(TEXT, "en"), [20, 21, 22], id_langs=["de"] * 3)
    lang_ids = [engine.lang2id[lang] for lang in encoded.position_langs]
    assert lang_ids[-3:] == [0, 0, 0] and lang_ids[0] == 1
    expected = reference_attentions(tiny_model[1], encoded.input_ids, lang_ids)[:, :, -1]
    torch.testing.assert_close(attention(engine, encoded).weights, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("position", [-1, 99])
def test_bad_position_is_one_sentence(engine, position):
    encoded = engine.encode("Guten Morgen", "de")
    n = len(encoded.input_ids)
    with pytest.raises(ValueError, match=rf"^position must be between 0 and {n - 1} \(the text has {n} positions"):
        attention(engine, encoded, position)
