"""Weights in fewer bytes on the CPU, for decoding, which reads every weight once per token: bfloat16, or int8 per
output channel, the activations between the layers staying float32.

Three ways, all opt-in: `store_bfloat16` keeps each linear layer's weight (and the token embeddings, the output
projection's tied matrix) in bfloat16, half the bytes, and runs its products in bfloat16 with float32 biases, layer
norms, attention and logits around them; `quantize_int8` is torch's dynamic int8 (fbgemm), which also rounds each
product's input to 8 bits; `quantize_int8_weights` keeps int8 weights with one scale per output channel and runs the
products on bfloat16 inputs (`torch.ops.aten._weight_int8pack_mm`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # xlm.py's Linear calls mixed_linear here
    from .xlm import XLM


def store_bfloat16(model: XLM) -> XLM:
    """The model with every linear layer's weight and the token embeddings in bfloat16; the rest float32."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.weight.data = module.weight.data.to(torch.bfloat16)
    model.tokens.weight.data = model.tokens.weight.data.to(torch.bfloat16)  # shared with the projection if tied
    return model


def mixed_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x @ weight.T + bias for activations x in float32 and a weight stored in bfloat16: the product in bfloat16,
    the result and the bias added in float32."""
    product = F.linear(x.to(weight.dtype), weight).to(x.dtype)
    return product if bias is None else product + bias


class Int8Linear(nn.Module):
    """A linear layer with int8 weights, one scale per output channel, run on bfloat16 inputs; float32 out."""

    def __init__(self, layer: nn.Linear):
        super().__init__()
        weight = layer.weight.detach().float()  # (out, in)
        scales = weight.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / 127  # (out,)
        self.register_buffer("weight", torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scales.to(torch.bfloat16))
        self.bias = layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1]).to(torch.bfloat16).contiguous()  # (N, in)
        product = torch.ops.aten._weight_int8pack_mm(rows, self.weight, self.scales).to(x.dtype)  # (N, out)
        product = product.view(*x.shape[:-1], self.weight.shape[0])
        return product if self.bias is None else product + self.bias


def quantize_int8_weights(model: XLM) -> XLM:
    """Every linear layer, the output projection included, with int8 weights per output channel."""
    return replace_linears(model, Int8Linear)


def quantize_int8(model: XLM) -> XLM:
    """Every linear layer, the output projection included, with int8 weights (dynamic quantization, CPU only)."""
    replace_linears(model, as_torch_linear)
    return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def replace_linears(model: XLM, replacement) -> XLM:
    """The model with each of its linear layers replaced by `replacement(layer)`."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.Linear):
                setattr(module, name, replacement(child))
    return model


def as_torch_linear(layer: nn.Linear) -> nn.Linear:
    """A plain nn.Linear sharing the layer's parameters, as torch's quantization requires."""
    plain = nn.Linear(layer.in_features, layer.out_features, device="meta")
    plain.weight, plain.bias = layer.weight, layer.bias
    return plain
