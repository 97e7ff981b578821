"""How much each input position, and its token, position and language embeddings, the next token rests on.

The input is each position's summed embedding e = token + position + language, as XLM adds them. XLM normalises it
at once (LayerNorm), which makes the model blind to the scale of each e: f(s·e) = f(e), so ∂f/∂e · e is zero at
every position (Euler) and plain gradient × input says nothing. The normalisation's scale σ is therefore held at
its value for this text (as Ali et al. 2022 hold it for conservative propagation): the map from e to the first
block's input h = w ⊙ (e − mean e) / σ + b becomes linear, splits exactly into the three embeddings, and sends
e = 0 to the model's own h for a zero embedding, b. Gradients run on torch's products and torch's own thread pool
(OpenBLAS serves only inference) with the model's weights frozen; nothing here touches the inference path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..engine import Encoded, Engine
from ..model.xlm import XLM
from .attention import embed

METHODS = ("grad_x_input", "integrated_gradients")
PARTS = ("token", "position", "language")  # the order of Attribution.parts
MAX_STEPS = 64
# Rows (steps × positions) that run through the model at once with gradients: bounds the activations kept for
# the backward pass (about 0.4 MB a row at the real model's size, so 400 MB a batch) whatever the text's length.
ROWS_PER_BATCH = 1024


@dataclass(frozen=True)
class EmbeddingParts:
    """A text's first-block input and its exact split into token, position and language embeddings."""

    normalised: torch.Tensor  # (T, C): embed_norm(token + position + language), what the first block reads
    bias: torch.Tensor  # (C,): the LayerNorm's bias, what the first block reads for a zero embedding
    parts: torch.Tensor  # (3, T, C): w ⊙ (part − mean part) / σ for each embedding; they sum to normalised − bias


@dataclass(frozen=True)
class Attribution:
    """Each position's share of f = log p(target) [− log p(contrast)] for the token after the text."""

    input_ids: list[int]
    lang: str  # the text's language id (a continuation may carry another; see Encoded.position_langs)
    target: int
    contrast: int | None
    method: str
    steps: int  # 1 for gradient × input
    scores: torch.Tensor  # (T,): each position's attribution
    parts: torch.Tensor  # (3, T): its token, position and language shares, summing to scores
    value: float  # f at the text
    baseline_value: float | None  # f at the zero embedding (integrated gradients only)
    truncated: bool = False

    @property
    def completeness_error(self) -> float | None:
        """|Σ scores − (f(x) − f(0))| relative to |f(x) − f(0)|: integrated gradients' own check."""
        if self.baseline_value is None:
            return None
        change = self.value - self.baseline_value
        return abs(float(self.scores.sum()) - change) / max(abs(change), 1e-12)


def embedding_parts(model: XLM, input_ids: torch.Tensor, lang_ids: torch.Tensor) -> EmbeddingParts:
    """The (T,) ids' normalised embeddings under (T,) language ids, split with the LayerNorm's scale held."""
    norm = model.embed_norm
    with torch.no_grad():
        positions = torch.arange(len(input_ids), device=input_ids.device)  # (T,)
        raw = torch.stack([model.tokens(input_ids), model.positions(positions), model.langs(lang_ids)]).float()
        summed = raw.sum(0)  # (T, C); raw is (3, T, C)
        sigma = (summed.var(-1, unbiased=False, keepdim=True) + norm.eps).sqrt()  # (T, 1)
        parts = norm.weight.float() * (raw - raw.mean(-1, keepdim=True)) / sigma  # (3, T, C)
        normalised = embed(model, input_ids[None], lang_ids[None])[0].float()  # (T, C): the model's own LayerNorm
    return EmbeddingParts(normalised, norm.bias.detach().float(), parts)


def log_probs(model: XLM, h: torch.Tensor) -> torch.Tensor:
    """(S, vocab) log-probabilities of the token after the last position, from first-block inputs (S, T, C)."""
    x = h.to(model.dtype)
    for layer, block in enumerate(model.blocks):
        x = block(x, layer, None)  # (S, T, C)
    return model.logits(x[:, -1]).float().log_softmax(-1)  # (S, V)


def objective(logp: torch.Tensor, target: int, contrast: int | None) -> torch.Tensor:
    """(S,) log p(target), minus log p(contrast) when contrasting (inseq's contrast_prob_diff, in logs)."""
    value = logp[:, target]
    return value if contrast is None else value - logp[:, contrast]


def gradients(
    model: XLM, h: torch.Tensor, target: int | None, contrast: int | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """∂f/∂h (S, T, C) and f (S,) at first-block inputs (S, T, C), and the target (None: the first row's top token)."""
    with torch.enable_grad():
        h = h.detach().requires_grad_()
        logp = log_probs(model, h)  # (S, V)
        target = int(logp[0].argmax()) if target is None else target
        value = objective(logp, target, contrast)  # (S,)
        (grad,) = torch.autograd.grad(value.sum(), h)  # only the input's gradient: the weights stay frozen
    return grad, value.detach(), target


def ends(model: XLM, parts: EmbeddingParts, target: int | None, contrast: int | None) -> tuple[float, float, int]:
    """f at the text and at the zero embedding, from one inference forward, and the target (None: the top token)."""
    with torch.inference_mode():
        h = torch.stack([parts.normalised, parts.bias.expand_as(parts.normalised)])  # (2, T, C): text, zero
        logp = log_probs(model, h)  # (2, V)
    target = int(logp[0].argmax()) if target is None else target
    value, baseline_value = objective(logp, target, contrast).tolist()
    return value, baseline_value, target


def integrated_gradient(model: XLM, parts: EmbeddingParts, target: int, contrast: int | None, steps: int):
    """(T, C) gradient averaged along α·e for α from 0 to 1, by Gauss-Legendre quadrature with `steps` nodes."""
    delta = parts.normalised - parts.bias  # (T, C): the straight path's direction in the first block's input
    nodes, weights = np.polynomial.legendre.leggauss(steps)  # on [-1, 1]
    alphas = torch.tensor((nodes + 1) / 2, dtype=delta.dtype, device=delta.device)  # (steps,) in (0, 1)
    weights = torch.tensor(weights / 2, dtype=delta.dtype, device=delta.device)  # (steps,), summing to 1
    mean_grad = torch.zeros_like(delta)  # (T, C)
    size = max(1, ROWS_PER_BATCH // len(delta))  # steps per batch
    for start in range(0, steps, size):
        alpha = alphas[start : start + size, None, None]  # (S, 1, 1)
        grad, _, _ = gradients(model, parts.bias + alpha * delta, target, contrast)  # (S, T, C)
        mean_grad += (weights[start : start + size, None, None] * grad).sum(0)
    return mean_grad


def check_method(method: str, steps: int) -> None:
    """The method's name and the number of integration steps, if known and within 1..MAX_STEPS."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")


def token_id(engine: Engine, token: int | str | None, role: str) -> int | None:
    """A token given as an id, as shown ("Berlin", "wi@@") or as the vocabulary holds it ("Berlin</w>")."""
    if token is None or str(token).strip() == "":
        return None
    text = str(token).strip()
    vocab_size = engine.model.config.vocab_size
    if text.isdigit() and int(text) < vocab_size:
        return int(text)
    shown = text.removesuffix("@@") if text.endswith("@@") else f"{text}</w>"
    for piece in (shown, text):
        if piece in engine.tokenizer.vocab:
            return engine.tokenizer.vocab[piece]
    raise ValueError(f"{role} must be a token id below {vocab_size} or a token of the vocabulary, got {text!r}")


def attribute(
    engine: Engine,
    encoded: Encoded,
    target: int | None = None,
    contrast: int | None = None,
    method: str = "grad_x_input",
    steps: int = 16,
) -> Attribution:
    """Each position's attribution of the next token (None: the top candidate), optionally against a contrast."""
    check_method(method, steps)
    if engine.quantized:
        raise ValueError("attribution needs gradients, which int8 layers do not give: run without --quantize int8")
    if contrast is not None and contrast == target:
        raise ValueError("the contrast token must differ from the target")
    ids = torch.tensor(encoded.input_ids, device=engine.device)  # (T,)
    langs = [engine.lang2id[engine.check_lang(lang)] for lang in encoded.position_langs]
    with engine.holding_model():
        parts = embedding_parts(engine.model, ids, torch.tensor(langs, device=engine.device))
        if method == "grad_x_input":
            grad, values, target = gradients(engine.model, parts.normalised[None], target, contrast)
            grad, value, baseline_value = grad[0], float(values[0]), None
        else:
            with engine.thread_scope():  # inference: the engine's products and threads
                value, baseline_value, target = ends(engine.model, parts, target, contrast)
            grad = integrated_gradient(engine.model, parts, target, contrast, steps)
    if contrast == target:
        raise ValueError("the contrast token is the top candidate, the default target: pick another target or contrast")
    scores = (grad * (parts.normalised - parts.bias)).sum(-1)  # (T,): the model's own h, not the sum of parts
    shares = (grad[None] * parts.parts).sum(-1)  # (3, T)
    return Attribution(
        encoded.input_ids,
        encoded.lang,
        target,
        contrast,
        method,
        steps if method == "integrated_gradients" else 1,
        scores.cpu(),
        shares.cpu(),
        value,
        baseline_value,
        encoded.truncated,
    )
