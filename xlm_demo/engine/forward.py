"""Texts through the model in batches: language id tensors, right-padded batches, groups of similar length."""

from __future__ import annotations

import torch

from ..model.xlm import XLM
from .results import PAD_ID, Encoded

# Padded positions in one batched forward of predict_many: short prompts are not run at a long one's length.
BATCH_TOKENS = 1024


def lang_ids(lang2id: dict[str, int], rows: list[list[str]], device: torch.device) -> torch.Tensor:
    """(B, T) language ids of equally long rows of language codes."""
    return torch.tensor([[lang2id[lang] for lang in row] for row in rows], device=device)


def last_logits(model: XLM, lang2id: dict[str, int], encodings: list[Encoded]) -> torch.Tensor:
    """(B, vocab) logits after each encoding's last token, right-padded into one batch."""
    device = model.tokens.weight.device
    lengths = [len(e.input_ids) for e in encodings]
    width = max(lengths)
    padded = [e.input_ids + [PAD_ID] * (width - len(e.input_ids)) for e in encodings]
    ids = torch.tensor(padded, device=device)  # (B, T)
    langs = lang_ids(lang2id, [e.position_langs + [e.lang] * (width - len(e.input_ids)) for e in encodings], device)
    last = torch.tensor(lengths, device=device) - 1  # (B,)
    with torch.inference_mode():
        # Causal attention: padding on the right never reaches the real positions before it.
        hidden = model(ids, langs)  # (B, T, C)
        picked = hidden[torch.arange(len(encodings), device=device), last]  # (B, C)
        return model.logits(picked).float()  # (B, V)


def padded_groups(lengths: list[int], budget: int = BATCH_TOKENS) -> list[list[int]]:
    """Indices grouped by length so that each group's padded size (count × longest) stays within the budget."""
    groups: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        if groups and (len(groups[-1]) + 1) * lengths[index] <= budget:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups
