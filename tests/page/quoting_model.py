"""A checkpoint whose next tokens are known: after a quote mark it ranks the quote, &, </s>, <special1>, ', < and >
first, most of its mass on the quote (a peaked distribution); after a plain word every token is as likely (flat)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.bpe_files import BILINGUAL_CORPUS
from tests.checkpoints import hub_config, write_bpe
from tests.reference import random_reference
from xlm_demo.model.xlm import XLMConfig

CORPUS = f"{BILINGUAL_CORPUS}\nTom & Jerry , R&D and AT&T , x<y and y>x .\n"  # the test corpus, & < > added
# Pieces whose embeddings are the quote's, scaled: each reads the same direction, so each predicts them in this order.
QUOTING = {'"</w>': 1.0, "&</w>": 0.8, "</s>": 0.7, "<special1>": 0.6, "'</w>": 0.5, "<</w>": 0.45, "></w>": 0.4}
SHOWN = ['"', "&", "</s>", "<special1>", "'", "<", ">"]  # the same pieces as the page shows them
QUOTE_SCALE = 0.15  # the quote's logit for itself is dim × scale = 9.6: about 78% of the mass


def quoting_state(config: XLMConfig, vocab: dict[str, int]) -> dict[str, torch.Tensor]:
    """Weights with no attention or feed-forward output, so each position reads its own token; only QUOTING's
    embeddings are not zero, so a plain word's normalised embedding is zero and every logit the same."""
    state = {name: torch.zeros_like(tensor) for name, tensor in random_reference(config).state_dict().items()}
    for name, tensor in state.items():
        if "layer_norm" in name and name.endswith("weight"):
            tensor.fill_(1.0)
    quote = torch.tensor([QUOTE_SCALE, -QUOTE_SCALE] * (config.dim // 2))  # mean 0: layer norm keeps its direction
    for piece, share in QUOTING.items():
        state["transformer.embeddings.weight"][vocab[piece]] = share * quote
    del state["pred_layer.proj.weight"]  # tied to the embeddings
    return state


def write_quoting_checkpoint(folder: Path) -> dict[str, int]:
    """The checkpoint in the hub layout; returns its vocabulary."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = write_bpe(folder, corpus=CORPUS)
    config = XLMConfig(vocab_size=len(vocab), dim=64, n_layers=2, n_heads=4, n_langs=2, max_positions=64)
    save_file(quoting_state(config, vocab), folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(hub_config(config)), encoding="utf-8")
    tokenizer_config = {"do_lowercase_and_remove_accent": True, "lang2id": {"de": 0, "en": 1}, "model_max_length": 512}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config), encoding="utf-8")
    return vocab
