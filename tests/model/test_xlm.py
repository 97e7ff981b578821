"""The model against transformers' XLMWithLMHeadModel (causal=True), and its KV cache against itself."""

import pytest
import torch

from tests.reference import TINY, hub_state_dict, random_reference, reference_logits
from xlm_demo.model import blas
from xlm_demo.model.weights import WeightError, build_model
from xlm_demo.model.xlm import Linear

IDS = [1, 17, 42, 99, 5, 63, 7, 118, 30, 12, 11]  # no <pad> (2): the reference would mask it


@pytest.fixture(scope="module")
def bare_reference():
    """transformers' model on random TINY weights, without checkpoint files."""
    return random_reference()


@pytest.fixture(scope="module")
def model(bare_reference):
    return build_model(TINY, hub_state_dict(bare_reference))


def ours(model, ids, lang_id):
    with torch.no_grad():
        hidden = model(torch.tensor([ids]), torch.tensor([[lang_id]]))
        return model.logits(hidden)[0]


@pytest.mark.parametrize("lang_id", [0, 1])
def test_logits_match_reference_at_every_position(model, bare_reference, lang_id):
    expected = reference_logits(bare_reference, IDS, lang_id)
    torch.testing.assert_close(ours(model, IDS, lang_id), expected, atol=1e-5, rtol=1e-5)


def test_probabilities_match_reference(model, bare_reference):
    expected = reference_logits(bare_reference, IDS, 1).softmax(-1)
    got = ours(model, IDS, 1).softmax(-1)
    assert (got - expected).abs().max() < 1e-5


def test_language_id_changes_predictions(model):
    assert (ours(model, IDS, 0) - ours(model, IDS, 1)).abs().max() > 1e-3


def test_attention_is_causal(model):
    """Later tokens leave earlier logits as they were: within float32 rounding of products of other row counts,
    far below the leak of bidirectional attention (above 1e-2, see the next test)."""
    changed = [*IDS[:5], 77, 78, 79]
    torch.testing.assert_close(ours(model, changed, 1)[:5], ours(model, IDS, 1)[:5], atol=1e-5, rtol=0)


def test_config_default_leaks_the_future():
    """The pitfall the demo avoids: with the hub config's causal=false, later tokens change earlier logits."""
    bidirectional = random_reference(causal=False)
    changed = [*IDS[:5], 77, 78, 79]
    leak = reference_logits(bidirectional, changed, 1)[:5] - reference_logits(bidirectional, IDS, 1)[:5]
    assert leak.abs().max() > 1e-2


def test_cached_decoding_equals_full_forward(model):
    full = ours(model, IDS, 0)
    cache = model.new_cache(batch_size=1, capacity=len(IDS))
    chunks = [IDS[:4], IDS[4:5], IDS[5:8], IDS[8:9], IDS[9:]]  # a prefill, single tokens and chunks
    got = []
    with torch.no_grad():
        for chunk in chunks:
            hidden = model(torch.tensor([chunk]), torch.tensor([[0]]), cache=cache)
            got.append(model.logits(hidden)[0])
    assert cache.length == len(IDS)
    torch.testing.assert_close(torch.cat(got), full, atol=1e-5, rtol=1e-5)


def test_cache_truncate_then_continue(model):
    cache = model.new_cache(batch_size=1, capacity=len(IDS))
    with torch.no_grad():
        model(torch.tensor([IDS[:6]]), torch.tensor([[1]]), cache=cache)
        cache.truncate(3)
        hidden = model(torch.tensor([[50]]), torch.tensor([[1]]), cache=cache)
    expected = ours(model, [*IDS[:3], 50], 1)[-1]
    torch.testing.assert_close(model.logits(hidden)[0, -1], expected, atol=1e-5, rtol=1e-5)


def test_cache_refuses_overflow(model):
    cache = model.new_cache(batch_size=1, capacity=3)
    with pytest.raises(ValueError, match="holds 3 positions"), torch.no_grad():
        model(torch.tensor([IDS[:4]]), torch.tensor([[1]]), cache=cache)


def test_positions_beyond_the_model_are_refused(model):
    with pytest.raises(ValueError, match="48 positions"), torch.no_grad():
        model(torch.tensor([[1] * 49]), torch.tensor([[1]]))


def test_right_padding_leaves_real_positions_alone(model):
    padded = torch.tensor([IDS, IDS[:6] + [2] * 5])
    with torch.no_grad():
        logits = model.logits(model(padded, torch.tensor([[1], [1]])))
    torch.testing.assert_close(logits[1, :6], ours(model, IDS[:6], 1), atol=1e-5, rtol=1e-5)


def test_projection_shares_memory_with_equal_embeddings(bare_reference):
    model = build_model(TINY, hub_state_dict(bare_reference))
    assert model.proj.weight.data_ptr() == model.tokens.weight.data_ptr()


def test_missing_projection_is_tied_to_embeddings(bare_reference):
    state = hub_state_dict(bare_reference)
    del state["pred_layer.proj.weight"]  # transformers 5's save_pretrained layout
    model = build_model(TINY, state)
    torch.testing.assert_close(ours(model, IDS, 1), reference_logits(bare_reference, IDS, 1), atol=1e-5, rtol=1e-5)


def test_differing_projection_is_used_as_stored(bare_reference):
    state = hub_state_dict(bare_reference)
    state["pred_layer.proj.weight"] = state["pred_layer.proj.weight"] + 0.1
    model = build_model(TINY, state)
    assert model.proj.weight.data_ptr() != model.tokens.weight.data_ptr()
    torch.testing.assert_close(model.proj.weight, state["pred_layer.proj.weight"])


def test_every_missing_and_unexpected_key_is_named(bare_reference):
    state = hub_state_dict(bare_reference)
    del state["transformer.ffns.1.lin2.bias"]
    del state["transformer.layer_norm_emb.weight"]
    state["transformer.extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightError) as error:
        build_model(TINY, state)
    message = str(error.value)
    for key in ("transformer.ffns.1.lin2.bias", "transformer.layer_norm_emb.weight", "transformer.extra.weight"):
        assert key in message


def test_wrong_shape_is_named(bare_reference):
    state = hub_state_dict(bare_reference)
    state["transformer.attentions.0.q_lin.weight"] = torch.zeros(64, 32)
    with pytest.raises(WeightError, match=r"attentions\.0\.q_lin\.weight has shape \(64, 32\)"):
        build_model(TINY, state)


def test_bidirectional_mode_matches_the_hub_configs_reference(bare_reference):
    """causal=False reproduces transformers with the hub config's causal: false (the fidelity view uses it)."""
    bidirectional = random_reference(causal=False)
    model = build_model(TINY, hub_state_dict(bidirectional))
    with torch.no_grad():
        got = model.logits(model(torch.tensor([IDS]), torch.tensor([[1]]), causal=False))[0]
    torch.testing.assert_close(got, reference_logits(bidirectional, IDS, 1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("shape", "out_features"),
    [
        ((1, 1, 64), 96),  # one row: a GEMV
        ((1, 7, 64), 96),  # a few rows: block by block
        ((3, 5, 64), 96),
        ((64,), 96),
        ((1, 3, 64), 2 * blas.BLOCK_ROWS + 5),  # several blocks of the weight, the last one short
        ((1, blas.FEW_ROWS + 1, 64), 96),  # many rows: one plain product
    ],
)
def test_openblas_products_equal_torch(shape, out_features):
    torch.manual_seed(0)
    layer, x = Linear(64, out_features), torch.randn(shape)
    blas.route(layer)
    with torch.inference_mode():
        assert blas.handles(x)
        got = layer(x)
    expected = torch.nn.functional.linear(x, layer.weight, layer.bias)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_training_keeps_torch_products_and_gradients():
    layer, x = Linear(8, 4), torch.randn(2, 8)
    blas.route(layer)
    assert layer.openblas and not blas.handles(x)  # gradients enabled
    layer(x).sum().backward()
    assert layer.weight.grad is not None
