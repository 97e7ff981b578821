"""Texts through the model in batches: language id tensors, right-padded batches, groups of similar length, and
many continuations of one cached prefix at once."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

from ..model.kv import Paged
from ..model.xlm import XLM, KVCache
from .results import PAD_ID, Encoded

# Padded positions in one batched forward of predict_many: short prompts are not run at a long one's length.
BATCH_TOKENS = 1024
# Rows of (vocab,) logits made at once when scoring continuations: 64 MB of float32 for the real vocabulary.
LOGIT_ROWS = 256
Hold = Callable[[], AbstractContextManager]  # the model to the calling thread alone while the block runs


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


def after_prefix(model: XLM, prefix: KVCache | Paged, rows: list[list[int]], lang_id: int) -> torch.Tensor:
    """(B, W, C) hidden states of right-padded rows of tokens, each run after the prefix whose keys and values are in
    `prefix` (row 0), every new position with one language id."""
    device = model.tokens.weight.device
    width = max(map(len, rows))
    ids = torch.tensor([row + [PAD_ID] * (width - len(row)) for row in rows], device=device)  # (B, W)
    langs = torch.full((len(rows), 1), lang_id, device=device)  # (B, 1), broadcast over every position
    cache = prefix.repeated(len(rows), prefix.length + width)  # the prefix in every row
    with torch.inference_mode():
        # Causal attention: padding on the right never reaches the real positions before it.
        return model(ids, langs, cache=cache)  # (B, W, C)


def next_logprobs(
    model: XLM, prefix: KVCache | Paged, rows: list[list[int]], lang_id: int, hold: Hold = nullcontext
) -> torch.Tensor:
    """(B, vocab) log-probabilities of the token after each non-empty row, run after the cached prefix, holding the
    model (`hold`) while it runs."""
    with hold():
        hidden = after_prefix(model, prefix, rows, lang_id)  # (B, W, C)
        last = torch.tensor([len(row) - 1 for row in rows], device=hidden.device)  # (B,)
        with torch.inference_mode():
            picked = hidden[torch.arange(len(rows), device=hidden.device), last]  # (B, C)
            return model.logits(picked).float().log_softmax(-1)  # (B, V)


def continuation_logprobs(
    model: XLM,
    prefix: KVCache | Paged,
    first: torch.Tensor,
    suffixes: list[list[int]],
    lang_id: int,
    budget: int,
    hold: Hold = nullcontext,
) -> list[torch.Tensor]:
    """log p of every token of each non-empty suffix, (len(suffix),) each, given the prefix held in `prefix` (row 0)
    whose next-token logits are `first` (vocab,) and the suffix's tokens before it. Suffixes run in right-padded
    batches of at most `budget` cached positions (rows × (prefix + longest)), the prefix repeated in every row,
    each batch holding the model (`hold`), so that others' work runs between them."""
    first_logprobs = first.float().log_softmax(-1)  # (V,)
    runs = [suffix[:-1] for suffix in suffixes]  # a suffix's last token predicts nothing asked for
    found: list[torch.Tensor] = [first_logprobs[suffix[:1]] for suffix in suffixes]  # (1,) each, for now
    for group in padded_groups([prefix.length + len(run) for run in runs], budget):
        batch = [runs[i] for i in group]
        if not any(batch):
            continue
        with hold():
            hidden = after_prefix(model, prefix, batch, lang_id)  # (b, W, C)
            real = torch.tensor([[t < len(run) for t in range(hidden.shape[1])] for run in batch])  # (b, W)
            targets = torch.tensor([t for i in group for t in suffixes[i][1:]], device=hidden.device)  # (N,)
            logprobs = token_logprobs(model, hidden[real.to(hidden.device)], targets)  # (N,), row by row
        for i, own in zip(group, logprobs.split([len(run) for run in batch]), strict=True):
            found[i] = torch.cat([found[i], own])
    return found


def token_logprobs(model: XLM, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N,) log p of each target from the (N, C) hidden state of the position before it, LOGIT_ROWS at a time."""
    parts = []
    with torch.inference_mode():
        for start in range(0, len(targets), LOGIT_ROWS):
            logits = model.logits(hidden[start : start + LOGIT_ROWS]).float()  # (n, V)
            picked = targets[start : start + LOGIT_ROWS, None]  # (n, 1)
            parts.append((logits.gather(-1, picked) - logits.logsumexp(-1, keepdim=True))[:, 0])
    return torch.cat(parts) if parts else hidden.new_zeros(0)
