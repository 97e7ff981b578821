"""Attention weights of every layer and head for one query position, from each block's own projections."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..engine import Encoded, Engine
from ..model.xlm import XLM


@dataclass(frozen=True)
class AttentionMap:
    """How much each head of each layer looks at every position up to the chosen one."""

    input_ids: list[int]  # the whole text as fed, start token included
    lang: str  # the text's language id (a continuation may carry another; see Encoded.position_langs)
    position: int  # the query: its output predicts the token after it
    weights: torch.Tensor  # (layers, heads, position + 1), each row summing to 1
    truncated: bool = False


def check_position(position: int | None, length: int) -> int:
    """The query position (None: the last), if the text has it."""
    if position is None:
        return length - 1
    if not 0 <= position < length:
        raise ValueError(
            f"position must be between 0 and {length - 1} (the text has {length} positions, start token included), "
            f"got {position}"
        )
    return position


def embed(model: XLM, input_ids: torch.Tensor, langs: torch.Tensor) -> torch.Tensor:
    """The first block's input (B, T, C): token + position + language embeddings, normalised, as XLM.forward does."""
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # (T,)
    return model.embed_norm(model.tokens(input_ids) + model.positions(positions) + model.langs(langs))


def head_weights(model: XLM, input_ids: torch.Tensor, langs: torch.Tensor) -> torch.Tensor:
    """(B, layers, heads, T) attention of the last of (B, T) ids, with (B, T) or (B, 1) language ids, over every
    position, causal, start included.

    Each block runs as the model runs it; its query and key projections are applied once more to its input
    to recover the softmax that scaled_dot_product_attention keeps to itself.
    """
    B, T = input_ids.shape
    H = model.config.n_heads
    D = model.config.head_dim
    x = embed(model, input_ids, langs)  # (B, T, C)
    rows = []
    for layer, block in enumerate(model.blocks):
        q = block.attn.q(x[:, -1:]).view(B, 1, H, D).transpose(1, 2)  # (B, H, 1, D): the last position's query
        k = block.attn.k(x).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        scores = (q @ k.transpose(2, 3))[:, :, 0] / math.sqrt(D)  # (B, H, T): the last query sees every key
        rows.append(scores.float().softmax(-1))
        if layer < len(model.blocks) - 1:  # the last block's output is not needed
            x = block(x, layer, None)  # (B, T, C)
    return torch.stack(rows, dim=1)  # (B, L, H, T)


def attention(engine: Engine, encoded: Encoded, position: int | None = None) -> AttentionMap:
    """Every layer's and head's weights for the query at `position` (None: the last), under the encoding's ids."""
    rows = [[engine.lang2id[lang] for lang in encoded.position_langs]]
    return weights_for(engine, encoded, position, rows, [encoded.lang])[0]


def attention_by_lang(
    engine: Engine, encoded: Encoded, position: int | None = None, langs: list[str] | None = None
) -> dict[str, AttentionMap]:
    """The same tokens with every position under each language id (default: every one), in one batched forward.

    Only the language id differs, never the tokens, so the maps can be subtracted position by position.
    """
    langs = [engine.check_lang(lang) for lang in langs or engine.lang2id]
    rows = [[engine.lang2id[lang]] * len(encoded.input_ids) for lang in langs]
    return dict(zip(langs, weights_for(engine, encoded, position, rows, langs), strict=True))


def weights_for(
    engine: Engine, encoded: Encoded, position: int | None, lang_rows: list[list[int]], labels: list[str]
) -> list[AttentionMap]:
    """One map per row of per-position language ids, each labelled, from one batched forward."""
    position = check_position(position, len(encoded.input_ids))
    ids = torch.tensor([encoded.input_ids[: position + 1]] * len(lang_rows), device=engine.device)  # (B, P)
    langs = torch.tensor([row[: position + 1] for row in lang_rows], device=engine.device)  # (B, P)
    # Causal: later positions cannot change the weights.
    with engine.holding_model(), engine.thread_scope(), torch.inference_mode():
        weights = head_weights(engine.model, ids, langs).cpu()  # (B, L, H, P)
    return [
        AttentionMap(encoded.input_ids, label, position, row, encoded.truncated)
        for label, row in zip(labels, weights, strict=True)
    ]
