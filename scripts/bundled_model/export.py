"""Write a trained XLM in the hub layout transformers and xlm_demo.model.checkpoint read (float16, tied matrix once)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from xlm_demo.model.checkpoint import release_vocab
from xlm_demo.model.weights import PROJECTION, hf_key_map
from xlm_demo.model.xlm import XLM

from .streams import EOS, SPECIALS


def hub_state_dict(model: XLM, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The model's tensors under transformers' names; the tied output projection is left out, as transformers 5 does."""
    ours = model.state_dict()
    if model.proj.weight is not model.tokens.weight:
        raise ValueError("the bundled model is trained with tied input and output embeddings")
    return {
        hf: ours[name].detach().to(dtype).contiguous()
        for hf, name in hf_key_map(model.config).items()
        if hf != PROJECTION
    }


def hub_config(model: XLM, lang2id: dict[str, int]) -> dict:
    """config.json with transformers' XLMConfig field names; causal, since this is a CLM."""
    c = model.config
    return {
        "architectures": ["XLMWithLMHeadModel"],
        "model_type": "xlm",
        "emb_dim": c.dim,
        "n_layers": c.n_layers,
        "n_heads": c.n_heads,
        "vocab_size": c.vocab_size,
        "n_langs": c.n_langs,
        "lang2id": lang2id,
        "id2lang": {str(i): code for code, i in lang2id.items()},
        "use_lang_emb": True,
        "max_position_embeddings": c.max_positions,
        "layer_norm_eps": c.layer_norm_eps,
        "causal": True,
        "is_encoder": True,
        "gelu_activation": True,
        "sinusoidal_embeddings": False,
        "asm": False,
        "share_inout_emb": True,
        "tie_word_embeddings": True,
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "bos_index": 0,
        "eos_index": EOS,
        "pad_index": 2,
        "unk_index": 3,
        "mask_index": 5,
        "bos_token_id": 0,
        "eos_token_id": EOS,
        "pad_token_id": 2,
        "lang_id": 0,
    }


def export(model: XLM, word2id: dict[str, int], codes: Path, lang2id: dict[str, int], out: Path) -> None:
    """config.json, model.safetensors (float16), vocab.json, merges.txt and tokenizer_config.json in out/."""
    if list(word2id)[: len(SPECIALS)] != list(SPECIALS) or len(word2id) != model.config.vocab_size:
        raise ValueError("the dictionary does not match the model's vocabulary")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", hub_config(model, lang2id))
    save_file(hub_state_dict(model, torch.float16), out / "model.safetensors", metadata={"format": "pt"})
    write_json(out / "vocab.json", release_vocab(word2id))
    shutil.copyfile(codes, out / "merges.txt")
    write_json(
        out / "tokenizer_config.json",
        {
            "do_lowercase_and_remove_accent": False,  # cased, like the real model's training text
            "lang2id": lang2id,
            "id2lang": {str(i): code for code, i in lang2id.items()},
            "model_max_length": model.config.max_positions,
        },
    )


def write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
