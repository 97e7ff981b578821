"""Attribution of the next token against transformers' XLMWithLMHeadModel through inputs_embeds and autograd.

transformers' inputs_embeds is the token embedding; the model adds the position and language embeddings to it and
normalises the sum. Its gradient is therefore the gradient at the summed embedding e, and the reference for
position t's gradient × input is grad_t · e_t, with its token, position and language shares grad_t · each part.
The demo holds the embedding LayerNorm's scale σ at its value for the text (see xlm_demo/attribution.py); the
reference does the same by swapping transformers' layer_norm_emb for one whose σ is computed once and detached.
"""

import copy

import pytest
import torch
from torch import nn

from xlm_demo.inside import attribution
from xlm_demo.inside.attribution import attribute, token_id

TEXT = "Die Katze schläft, weil es kalt ist und der Ofen aus ist."


class FrozenScaleNorm(nn.Module):
    """A LayerNorm whose scale is a constant: its weight and bias, σ computed elsewhere and detached."""

    def __init__(self, norm: nn.LayerNorm, sigma: torch.Tensor):
        super().__init__()
        self.norm, self.sigma = norm, sigma

    def forward(self, x):
        return (x - x.mean(-1, keepdim=True)) / self.sigma * self.norm.weight + self.norm.bias


class Reference:
    """transformers' model on one text, fed through inputs_embeds, with the embedding LayerNorm's σ held or not."""

    def __init__(self, model, ids: list[int], lang_ids: int | list[int], frozen_scale: bool = True):
        self.model = copy.deepcopy(model)
        core = self.model.transformer
        self.ids = torch.tensor([ids])  # (1, T)
        self.langs = torch.tensor([lang_ids]) if isinstance(lang_ids, list) else torch.full_like(self.ids, lang_ids)
        with torch.no_grad():
            self.token = core.embeddings(self.ids)  # (1, T, C)
            self.position = core.position_embeddings.weight[: len(ids)][None]  # (1, T, C)
            self.language = core.lang_embeddings(self.langs)  # (1, T, C)
        self.summed = self.token + self.position + self.language
        if frozen_scale:
            sigma = (self.summed.var(-1, unbiased=False, keepdim=True) + core.layer_norm_emb.eps).sqrt()
            core.layer_norm_emb = FrozenScaleNorm(core.layer_norm_emb, sigma)

    def objective(self, summed: torch.Tensor, target: int, contrast: int | None = None) -> torch.Tensor:
        """log p(target) [− log p(contrast)] after the text, for a summed embedding (1, T, C)."""
        inputs_embeds = summed - self.position - self.language  # the model adds them back
        logp = self.model(inputs_embeds=inputs_embeds, langs=self.langs).logits[0, -1].log_softmax(-1)
        return logp[target] - (logp[contrast] if contrast is not None else 0)

    def gradient(self, summed: torch.Tensor, target: int, contrast: int | None = None) -> torch.Tensor:
        """(1, T, C) gradient of the objective at a summed embedding, by autograd."""
        summed = summed.detach().requires_grad_()
        (grad,) = torch.autograd.grad(self.objective(summed, target, contrast), summed)
        return grad

    def shares(self, grad: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each position's gradient times the summed embedding and times each of its three parts."""
        return {
            "score": (grad * self.summed).sum(-1)[0],
            "token": (grad * self.token).sum(-1)[0],
            "position": (grad * self.position).sum(-1)[0],
            "language": (grad * self.language).sum(-1)[0],
        }

    def integrated_gradient(self, target: int, steps: int) -> torch.Tensor:
        """(1, T, C) gradient averaged along α·e by the same Gauss-Legendre rule."""
        import numpy as np

        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return sum(
            float(w / 2) * self.gradient(float((a + 1) / 2) * self.summed, target)
            for a, w in zip(nodes, weights, strict=True)
        )


def at_zero_embedding(model, reference: Reference, target: int) -> float:
    """log p(target) of the unmodified model when every summed embedding is exactly zero."""
    model = copy.deepcopy(model)
    with torch.no_grad():  # zero tables: nothing is added to inputs_embeds, so no rounding leaves e near zero
        model.transformer.position_embeddings.weight.zero_()
        model.transformer.lang_embeddings.weight.zero_()
        zero = torch.zeros_like(reference.summed)
        return float(model(inputs_embeds=zero, langs=reference.langs).logits[0, -1].log_softmax(-1)[target])


def assert_matches(got, expected: dict[str, torch.Tensor], atol: float) -> None:
    torch.testing.assert_close(got.scores, expected["score"], atol=atol, rtol=0)
    for row, name in enumerate(("token", "position", "language")):
        torch.testing.assert_close(got.parts[row], expected[name], atol=atol, rtol=0)


@pytest.mark.parametrize("lang", ["en", "de"])
def test_grad_x_input_matches_reference(engine, tiny_model, lang):
    encoded = engine.encode(TEXT, lang)
    got = attribute(engine, encoded)
    reference = Reference(tiny_model[1], encoded.input_ids, engine.lang2id[lang])
    with torch.no_grad():
        logp = reference.model(input_ids=reference.ids, langs=reference.langs).logits[0, -1].log_softmax(-1)
    assert got.target == int(logp.argmax())  # the default target: the top candidate
    assert got.value == pytest.approx(float(logp.max()), abs=1e-5)
    expected = reference.shares(reference.gradient(reference.summed, got.target))
    assert expected["score"].abs().max() > 1e-2  # not a vacuous match
    assert_matches(got, expected, atol=1e-4)


def test_contrast_matches_reference(engine, tiny_model):
    encoded = engine.encode(TEXT, "en")
    plain = attribute(engine, encoded)
    contrast = int(plain.target + 1)
    got = attribute(engine, encoded, target=plain.target, contrast=contrast)
    reference = Reference(tiny_model[1], encoded.input_ids, 1)
    expected = reference.shares(reference.gradient(reference.summed, got.target, contrast))
    assert_matches(got, expected, atol=1e-4)
    against = attribute(engine, encoded, target=contrast)
    torch.testing.assert_close(got.scores, plain.scores - against.scores, atol=1e-5, rtol=0)  # gradients are linear
    assert got.value == pytest.approx(plain.value - against.value, abs=1e-5)


@pytest.mark.parametrize("method", ["grad_x_input", "integrated_gradients"])
def test_a_continuation_under_another_id_matches_reference(engine, tiny_model, method):
    encoded = engine.append(engine.encode(TEXT, "de"), [20, 21, 22], id_langs=["en"] * 3)
    lang_ids = [engine.lang2id[lang] for lang in encoded.position_langs]
    assert lang_ids[-3:] == [1, 1, 1] and lang_ids[0] == 0
    got = attribute(engine, encoded, method=method, steps=16)
    reference = Reference(tiny_model[1], encoded.input_ids, lang_ids)
    if method == "grad_x_input":
        grad = reference.gradient(reference.summed, got.target)
    else:
        grad = reference.integrated_gradient(got.target, 16)
    assert_matches(got, reference.shares(grad), atol=1e-4)


def test_without_holding_the_scale_gradient_x_input_vanishes(engine, tiny_model):
    """Why σ is held: the embedding LayerNorm makes f blind to each e_t's scale, so ∂f/∂e_t · e_t = 0."""
    encoded = engine.encode(TEXT, "en")
    got = attribute(engine, encoded)
    plain = Reference(tiny_model[1], encoded.input_ids, 1, frozen_scale=False)
    vanishing = plain.shares(plain.gradient(plain.summed, got.target))["score"]
    assert vanishing.abs().max() < 1e-4 * got.scores.abs().max()


def test_integrated_gradients_match_reference_and_are_complete(engine, tiny_model):
    encoded = engine.encode(TEXT, "de")
    got = attribute(engine, encoded, method="integrated_gradients", steps=32)
    reference = Reference(tiny_model[1], encoded.input_ids, 0)
    expected = reference.shares(reference.integrated_gradient(got.target, 32))
    assert_matches(got, expected, atol=1e-4)
    assert got.baseline_value == pytest.approx(at_zero_embedding(tiny_model[1], reference, got.target), abs=1e-5)
    assert abs(got.value - got.baseline_value) > 1e-2
    assert got.completeness_error < 0.05
    assert float(got.scores.sum()) == pytest.approx(got.value - got.baseline_value, rel=0.05)


@pytest.mark.parametrize("rows", [1, 10**6])
def test_integrated_gradients_in_batches_is_the_same(engine, monkeypatch, rows):
    encoded = engine.encode(TEXT, "en")
    whole = attribute(engine, encoded, method="integrated_gradients", steps=7)
    monkeypatch.setattr(attribution, "ROWS_PER_BATCH", rows)  # 1: a step per batch
    split = attribute(engine, encoded, method="integrated_gradients", steps=7)
    torch.testing.assert_close(split.scores, whole.scores, atol=1e-6, rtol=0)
    torch.testing.assert_close(split.parts, whole.parts, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", ["grad_x_input", "integrated_gradients"])
def test_three_parts_sum_to_the_score(engine, method):
    got = attribute(engine, engine.encode(TEXT, "en"), method=method, steps=8)
    torch.testing.assert_close(got.parts.sum(0), got.scores, atol=1e-5 * float(got.scores.abs().max()), rtol=0)
    assert got.parts[2].abs().max() > 0  # the language id has a share


def test_weights_stay_frozen_and_inference_is_untouched(engine):
    encoded = engine.encode(TEXT, "en")
    before = engine.predict_encoded(encoded, top_k=20)
    threads = torch.get_num_threads()
    attribute(engine, encoded, method="integrated_gradients", steps=4)
    assert all(p.grad is None and not p.requires_grad for p in engine.model.parameters())
    assert engine.predict_encoded(encoded, top_k=20) == before  # exactly: the same path, the same numbers
    assert torch.get_num_threads() == threads and torch.is_grad_enabled()


def test_tokens_by_id_display_form_or_piece(engine):
    vocab = engine.tokenizer.vocab
    word = next(piece for piece, i in vocab.items() if piece.endswith("</w>") and i > 13 and len(piece) > 6)
    start = next(piece for piece, i in vocab.items() if not piece.endswith("</w>") and i > 13 and len(piece) > 2)
    assert token_id(engine, word.removesuffix("</w>"), "target") == vocab[word]
    assert token_id(engine, word, "target") == vocab[word]
    assert token_id(engine, f"{start}@@", "target") == vocab[start]
    assert token_id(engine, "17", "target") == 17 and token_id(engine, 17, "target") == 17
    assert token_id(engine, "", "contrast") is None and token_id(engine, None, "contrast") is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "saliency"}, "method must be one of grad_x_input, integrated_gradients, got 'saliency'"),
        ({"method": "integrated_gradients", "steps": 0}, "steps must be between 1 and 64, got 0"),
        ({"target": 5, "contrast": 5}, "the contrast token must differ from the target"),
    ],
)
def test_bad_requests_are_one_sentence(engine, kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        attribute(engine, engine.encode(TEXT, "en"), **kwargs)


def test_unknown_token_is_one_sentence(engine):
    message = r"^target must be a token id below \d+ or a token of the vocabulary, got 'zzz'$"
    with pytest.raises(ValueError, match=message):
        token_id(engine, "zzz", "target")
    with pytest.raises(ValueError, match=r"^contrast must be a token id below"):
        token_id(engine, "99999999", "contrast")
