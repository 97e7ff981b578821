"""Train xlm_demo's own XLM as XLM trained its CLMs: next-token loss on language-tagged stream windows."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from xlm_demo.model.xlm import XLM, XLMConfig

from .settings import Settings
from .streams import Batches, windows


def new_model(config: XLMConfig, seed: int) -> XLM:
    """A freshly initialised XLM with tied input and output embeddings (XLM's share_inout_emb)."""
    torch.manual_seed(seed)
    model = XLM(config)
    std = config.dim**-0.5  # XLM's Embedding init: N(0, dim^-0.5)
    for table in (model.tokens, model.positions, model.langs):
        torch.nn.init.normal_(table.weight, std=std)
    torch.nn.init.zeros_(model.proj.bias)
    model.proj.weight = model.tokens.weight
    return model


def nll(model: XLM, tokens: torch.Tensor, langs: torch.Tensor) -> torch.Tensor:
    """Per-token negative log-likelihood (B, T) of windows (B, T + 1) under language ids (B, 1)."""
    hidden = model(tokens[:, :-1], langs)  # (B, T, C)
    logits = model.logits(hidden)  # (B, T, V)
    return F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")  # (B, T)


@torch.no_grad()
def mean_nll(model: XLM, tokens: torch.Tensor, lang: int, bptt: int, max_windows: int, batch_size: int = 32) -> float:
    """Mean next-token NLL (nats) of a stream's first max_windows windows, all under one language id."""
    batch = windows(tokens, bptt)[:max_windows]
    total = 0.0
    for start in range(0, len(batch), batch_size):
        chunk = batch[start : start + batch_size]
        total += nll(model, chunk, torch.full((len(chunk), 1), lang)).sum().item()
    return total / (len(batch) * bptt)


def learning_rate(step: int, settings: Settings) -> float:
    """Linear warm-up to lr, then a cosine down to lr * min_lr_ratio at the last step."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
    floor = settings.lr * settings.min_lr_ratio
    return floor + (settings.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def optimizer(model: XLM, settings: Settings) -> torch.optim.AdamW:
    """AdamW, with weight decay on matrices only (not on biases, LayerNorms or embedding tables)."""
    embeddings = {id(t.weight) for t in (model.tokens, model.positions, model.langs)}
    params = {id(p): p for p in model.parameters()}.values()  # the tied matrix once
    decay = [p for p in params if p.dim() == 2 and id(p) not in embeddings]
    rest = [p for p in params if p.dim() != 2 or id(p) in embeddings]
    groups = [{"params": decay, "weight_decay": settings.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.98), eps=1e-8)


def train(
    config: XLMConfig,
    train_streams: dict[str, torch.Tensor],
    heldout_streams: dict[str, torch.Tensor],
    lang2id: dict[str, int],
    settings: Settings,
    log_path: Path,
) -> XLM:
    """The trained model; the curve goes to log_path as JSON lines (train loss, held-out loss per language)."""
    torch.set_num_threads(settings.threads)
    model = new_model(config, settings.seed).train()
    opt = optimizer(model, settings)
    by_id = {lang2id[code]: tokens for code, tokens in train_streams.items()}
    batches = Batches(by_id, settings.bptt, settings.batch_size, settings.seed)
    started, running = time.time(), []
    with log_path.open("w") as log:

        def record(entry: dict) -> None:
            log.write(json.dumps(entry) + "\n")
            log.flush()
            print(" ".join(f"{k}={v}" for k, v in entry.items()), flush=True)

        for step in range(settings.steps):
            for group in opt.param_groups:
                group["lr"] = learning_rate(step, settings)
            tokens, langs = next(batches)
            loss = nll(model, tokens, langs).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
            opt.step()
            running.append(loss.item())
            done = step + 1
            if done % settings.log_every == 0 or done == settings.steps:
                entry = {"step": done, "train_loss": round(sum(running) / len(running), 4)}
                entry["lr"] = round(learning_rate(step, settings), 6)
                entry["elapsed_s"] = round(time.time() - started, 1)
                entry["epochs"] = {code: batches.epochs[lang2id[code]] for code in train_streams}
                running = []
                if done % settings.eval_every == 0 or done == settings.steps:
                    model.eval()
                    for code, held in heldout_streams.items():
                        loss_ = mean_nll(model, held, lang2id[code], settings.bptt, settings.eval_windows)
                        entry[f"heldout_loss_{code}"] = round(loss_, 4)
                    model.train()
                record(entry)
    return model.eval()
