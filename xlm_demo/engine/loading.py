"""A checkpoint placed on a device: the model in its dtype, its products library, its tokenizer."""

from __future__ import annotations

import logging

import torch

from ..model import blas
from ..model.bpe import load_bpe
from ..model.checkpoint import Checkpoint
from ..model.languages import log_languages
from ..model.precision import quantize_int8, quantize_int8_weights, store_bfloat16
from ..model.tokenizer import Tokenizer, vocab_is_cased
from ..model.weights import build_model
from ..model.xlm import XLM
from .results import START_ID

log = logging.getLogger("xlm_demo")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# int8 on the CPU: torch's dynamic int8; "int8-weights", int8 weights per output channel on bfloat16 inputs, is
# measured beside it by make bench (docs/benchmarks.md says which is faster and closer here).
QUANTIZERS = {"none": None, "int8": quantize_int8, "int8-weights": quantize_int8_weights}


def load_model(checkpoint: Checkpoint, device: str, dtype: str, quantize: str, products: str) -> XLM:
    """The checkpoint's network on a device, checked options first; `products` picks the CPU's float32
    matrix-product library (auto: whichever of openblas and torch runs a token faster here)."""
    target = resolve_device(device)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype}")
    if dtype == "float16" and target.type == "cpu":
        raise ValueError("float16 is for GPUs; on the CPU the model runs in float32 or bfloat16")
    if quantize not in QUANTIZERS:
        raise ValueError(f"quantize must be none or int8, got {quantize}")
    if quantize != "none" and (target.type != "cpu" or dtype != "float32"):
        raise ValueError("int8 quantization is for the CPU in float32")
    if products not in ("auto", "openblas", "torch"):
        raise ValueError(f"products must be auto, openblas or torch, got {products}")
    model = build_model(checkpoint.config, checkpoint.state_dict)
    if quantize != "none":
        return QUANTIZERS[quantize](model)
    if target.type == "cpu" and dtype == "bfloat16":
        return store_bfloat16(model)  # weights in bfloat16, activations in float32, products on torch
    model = model.to(device=target, dtype=DTYPES[dtype])
    if target.type == "cpu":
        blas.route(model, openblas=choose_products(model, products) == "openblas")
    return model


def load_tokenizer(checkpoint: Checkpoint) -> Tokenizer:
    """The checkpoint's tokenizer, cased when its vocabulary is, whatever its config says."""
    lowercase = not vocab_is_cased(checkpoint.vocab)
    if checkpoint.config_lowercases and not lowercase:
        log.info(
            "tokenizer_config.json asks to lowercase and strip accents, but the vocabulary is cased: "
            "text keeps its case and accents, as in training"
        )
    bpe, langs = load_bpe(checkpoint.merges_path), tuple(checkpoint.lang2id)
    tokenizer = Tokenizer(checkpoint.vocab, bpe, lowercase=lowercase, langs=langs)
    log_languages(checkpoint.lang2id)
    return tokenizer


def choose_products(model: XLM, products: str) -> str:
    """The float32 CPU product library for a model: as asked, or for "auto" the faster for one token here."""
    if products != "auto":
        return products

    def one_token() -> None:
        with torch.inference_mode():
            model.logits(model(torch.tensor([[START_ID]]), torch.tensor([[0]]))[:, -1])

    chosen, seconds = blas.faster_products(model, one_token)
    timings = ", ".join(f"{name} {value * 1e3:.1f} ms" for name, value in seconds.items())
    log.info("matrix products on %s, the faster for one token here (%s)", chosen, timings)
    return chosen


def resolve_device(device: str) -> torch.device:
    """ "auto" is CUDA when a GPU is present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"{device!r} is not a device (try auto, cpu or cuda)") from error
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("no CUDA GPU is available here; use --device cpu or auto")
    return target
