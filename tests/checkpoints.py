"""Random-weight checkpoints written to disk in each layout the demo reads, with BPE files made here."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.bpe_files import (
    BILINGUAL_CORPUS,
    FRENCH_CORPUS,
    learn_codes,
    vocab_from_codes,
    write_codes,
    write_vocab_json,
)
from tests.reference import random_reference
from xlm_demo.model.xlm import XLMConfig

LANG2ID = {"de": 0, "en": 1}
ENFR = {"en": 0, "fr": 1}  # xlm-clm-enfr-1024's: languages sorted, so English is 0 there
# French text joins the corpus of any checkpoint that has French.
CORPUS_WITH_FRENCH = f"{BILINGUAL_CORPUS}\n{FRENCH_CORPUS}"


def corpus_for(lang2id: dict[str, int]) -> str:
    """The text BPE is learned on for a checkpoint with these languages."""
    return CORPUS_WITH_FRENCH if "fr" in lang2id else BILINGUAL_CORPUS


def write_bpe(folder: Path, n_merges: int = 300, corpus: str = BILINGUAL_CORPUS) -> dict[str, int]:
    """merges.txt and vocab.json learned from the test corpus; returns the vocabulary."""
    codes = learn_codes(corpus, n_merges)
    write_codes(folder / "merges.txt", codes)
    vocab = vocab_from_codes(codes, corpus.split())
    write_vocab_json(folder / "vocab.json", vocab)
    return vocab


def hub_config(config: XLMConfig, lang2id: dict[str, int] = LANG2ID) -> dict:
    """config.json as the hub has it for xlm-clm-ende-1024 (or enfr), causal: false included."""
    return {
        "architectures": ["XLMWithLMHeadModel"],
        "model_type": "xlm",
        "emb_dim": config.dim,
        "n_layers": config.n_layers,
        "n_heads": config.n_heads,
        "vocab_size": config.vocab_size,
        "n_langs": config.n_langs,
        "lang2id": lang2id,
        "id2lang": {str(i): lang for lang, i in lang2id.items()},
        "use_lang_emb": True,
        "causal": False,
        "gelu_activation": True,
        "sinusoidal_embeddings": False,
        "asm": False,
        "max_position_embeddings": config.max_positions,
        "layer_norm_eps": 1e-12,
    }


def write_hub_checkpoint(folder: Path, weights: str = "safetensors", seed: int = 0, lang2id: dict[str, int] = LANG2ID):
    """A hub-layout folder; returns the reference model holding the same weights."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = write_bpe(folder, corpus=corpus_for(lang2id))
    n_langs = len(lang2id)
    config = XLMConfig(vocab_size=len(vocab), dim=64, n_layers=2, n_heads=4, n_langs=n_langs, max_positions=64)
    reference = random_reference(config, seed=seed, lang2id=lang2id)
    state = {k: v.detach().clone().contiguous() for k, v in reference.state_dict().items()}
    if weights == "safetensors":  # transformers 5 stores the tied matrix once
        del state["pred_layer.proj.weight"]
        save_file(state, folder / "model.safetensors")
    else:  # the hub's 2019 pytorch_model.bin: torch.save of the state dict, both copies
        torch.save(state, folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(hub_config(config, lang2id)), encoding="utf-8")
    tokenizer_config = {"do_lowercase_and_remove_accent": True, "lang2id": lang2id, "model_max_length": 512}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config), encoding="utf-8")
    return reference


def write_release_checkpoint(folder: Path, seed: int = 0):
    """An original XLM release: a .pth with model, params, dico_word2id, and a codes file beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    codes = learn_codes(BILINGUAL_CORPUS, 300)
    write_codes(folder / "codes_test", codes)
    hf_vocab = vocab_from_codes(codes, BILINGUAL_CORPUS.split())
    word2id = {
        (w[: -len("</w>")] if w.endswith("</w>") else f"{w}@@") if i >= 14 else w: i for w, i in hf_vocab.items()
    }
    config = XLMConfig(vocab_size=len(hf_vocab), dim=64, n_layers=2, n_heads=4, n_langs=2, max_positions=512)
    reference = random_reference(config, seed=seed)
    model = {k.removeprefix("transformer."): v.detach().clone() for k, v in reference.state_dict().items()}
    params = {
        "emb_dim": config.dim,
        "n_layers": config.n_layers,
        "n_heads": config.n_heads,
        "n_words": config.vocab_size,
        "n_langs": 2,
        "langs": ["de", "en"],
        "lang2id": LANG2ID,
        "id2lang": {i: lang for lang, i in LANG2ID.items()},
        "gelu_activation": True,
        "sinusoidal_embeddings": False,
        "asm": False,
        "share_inout_emb": True,
    }
    torch.save({"model": model, "params": params, "dico_word2id": word2id, "epoch": 3}, folder / "clm_test.pth")
    return reference, hf_vocab
