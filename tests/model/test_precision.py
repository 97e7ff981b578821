"""--dtype bfloat16 on the CPU against the reference: every linear layer's weight and the token embeddings stored in
bfloat16, as transformers' model with those weights rounded to bfloat16 computes, and said so where it is shown."""

import copy

import pytest
import torch
from torch import nn

from tests.reference import reference_logits
from xlm_demo.engine import Engine
from xlm_demo.page.header import precision

SEQUENCES = [  # no id 2: transformers reads it as padding
    ([1, 14, 27, 33, 8, 91, 45, 62, 17, 5, 77, 3], 0),
    ([1, 101, 9, 58, 58, 23, 110, 40, 12, 66], 1),
]


@pytest.fixture(scope="module")
def bfloat16(tiny_model):
    return Engine.load(str(tiny_model[0]), device="cpu", dtype="bfloat16", products="torch")


def rounded(reference: nn.Module) -> nn.Module:
    """The reference with what --dtype bfloat16 stores in bfloat16 (every linear layer's weight, the token
    embeddings) rounded to it, and every product still run in float32."""
    model = copy.deepcopy(reference)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.weight.copy_(module.weight.to(torch.bfloat16).float())
        model.transformer.embeddings.weight.copy_(model.transformer.embeddings.weight.to(torch.bfloat16).float())
    return model


def logits(engine: Engine, ids: list[int], lang_id: int) -> torch.Tensor:
    with torch.inference_mode():
        hidden = engine.model(torch.tensor([ids]), torch.tensor([[lang_id]]))
        return engine.model.logits(hidden)[0].float()


def test_bfloat16_rounds_every_weight_it_says_it_does(tiny_model, bfloat16):
    """Closer to the reference with those weights rounded than to the float32 one, by as much as the rounding
    moves the reference itself: a weight left in float32 (a block's linear layer) would come out closer to the
    float32 reference."""
    reference = tiny_model[1]
    as_stored = rounded(reference)
    for ids, lang_id in SEQUENCES:
        got, exact = logits(bfloat16, ids, lang_id), reference_logits(reference, ids, lang_id)
        stored = reference_logits(as_stored, ids, lang_id)
        rounding = (stored - exact).norm()
        assert (got - stored).norm() < (got - exact).norm()
        assert (got - exact).norm() > 0.5 * rounding  # the weights' rounding is in what it computes


def test_the_precision_shown_is_read_from_every_weight(bfloat16):
    stored = {module.weight.dtype for module in bfloat16.model.modules() if isinstance(module, nn.Linear)}
    assert stored == {torch.bfloat16} and bfloat16.model.tokens.weight.dtype == torch.bfloat16
    assert precision(bfloat16) == "bfloat16 weights, float32 activations"
    bfloat16.model.blocks[0].ffn.lin1.weight.data = bfloat16.model.blocks[0].ffn.lin1.weight.data.float()
    try:
        assert precision(bfloat16) == "bfloat16 and float32 weights, float32 activations"
    finally:
        bfloat16.model.blocks[0].ffn.lin1.weight.data = bfloat16.model.blocks[0].ffn.lin1.weight.data.bfloat16()
