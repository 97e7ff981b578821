"""The checkpoint's tensor names mapped onto the model's, every key and shape checked."""

from __future__ import annotations

import logging

import torch

from .xlm import XLM, XLMConfig

log = logging.getLogger("xlm_demo")

EMBEDDINGS = "transformer.embeddings.weight"
PROJECTION = "pred_layer.proj.weight"
# Buffers some old checkpoints carry; they hold nothing learned.
IGNORED = frozenset({"transformer.position_ids"})


class WeightError(ValueError):
    """A checkpoint whose tensors do not fit the model."""


def hf_key_map(config: XLMConfig) -> dict[str, str]:
    """transformers' XLMWithLMHeadModel parameter names -> this package's."""
    names = {
        EMBEDDINGS: "tokens.weight",
        "transformer.position_embeddings.weight": "positions.weight",
        "transformer.lang_embeddings.weight": "langs.weight",
        "transformer.layer_norm_emb.weight": "embed_norm.weight",
        "transformer.layer_norm_emb.bias": "embed_norm.bias",
        PROJECTION: "proj.weight",
        "pred_layer.proj.bias": "proj.bias",
    }
    per_layer = {
        "attentions.{i}.q_lin": "blocks.{i}.attn.q",
        "attentions.{i}.k_lin": "blocks.{i}.attn.k",
        "attentions.{i}.v_lin": "blocks.{i}.attn.v",
        "attentions.{i}.out_lin": "blocks.{i}.attn.out",
        "layer_norm1.{i}": "blocks.{i}.norm1",
        "ffns.{i}.lin1": "blocks.{i}.ffn.lin1",
        "ffns.{i}.lin2": "blocks.{i}.ffn.lin2",
        "layer_norm2.{i}": "blocks.{i}.norm2",
    }
    for i in range(config.n_layers):
        for hf, ours in per_layer.items():
            for param in ("weight", "bias"):
                names[f"transformer.{hf.format(i=i)}.{param}"] = f"{ours.format(i=i)}.{param}"
    return names


def build_model(config: XLMConfig, state_dict: dict[str, torch.Tensor]) -> XLM:
    """An XLM holding the checkpoint's tensors (no copies where they can be avoided), in eval mode, frozen."""
    state_dict = {k: v for k, v in state_dict.items() if k not in IGNORED}
    share_projection = _resolve_tied_projection(state_dict)
    names = hf_key_map(config)
    _check_keys(names, state_dict)
    with torch.device("meta"):
        model = XLM(config)
    expected = model.state_dict()
    mapped = {}
    for hf_name, ours in names.items():
        tensor = state_dict[hf_name]
        if tensor.shape != expected[ours].shape:
            raise WeightError(
                f"{hf_name} has shape {tuple(tensor.shape)}; the config asks for {tuple(expected[ours].shape)}"
            )
        mapped[ours] = tensor.float() if tensor.dtype != torch.float32 else tensor
    model.load_state_dict(mapped, strict=True, assign=True)
    if share_projection:
        model.proj.weight = model.tokens.weight
    return model.eval().requires_grad_(False)  # the demo never trains: gradients go to inputs only


def _resolve_tied_projection(state_dict: dict[str, torch.Tensor]) -> bool:
    """Fill in a missing output projection from the embeddings; True when the two may share memory."""
    if EMBEDDINGS not in state_dict:
        return False  # reported as missing by _check_keys
    if PROJECTION not in state_dict:
        # transformers 5's save_pretrained stores the tied matrix once.
        state_dict[PROJECTION] = state_dict[EMBEDDINGS]
        return True
    if torch.equal(state_dict[PROJECTION], state_dict[EMBEDDINGS]):
        return True
    log.warning(
        "%s differs from %s: projecting with the stored %s, as transformers does", PROJECTION, EMBEDDINGS, PROJECTION
    )
    return False


def _check_keys(names: dict[str, str], state_dict: dict[str, torch.Tensor]) -> None:
    missing = sorted(set(names) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(names))
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected)}")
    if problems:
        raise WeightError(f"the checkpoint does not fit the model: {'; '.join(problems)}")
