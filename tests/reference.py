"""The independent reference: transformers' XLMWithLMHeadModel with causal attention, random weights, and
XLMTokenizer's ids with each language's rules."""

from __future__ import annotations

import copy
import functools

import torch
from transformers import XLMConfig as HFConfig
from transformers import XLMTokenizer, XLMWithLMHeadModel

from xlm_demo.model.xlm import XLMConfig

TINY = XLMConfig(vocab_size=120, dim=64, n_layers=2, n_heads=4, n_langs=2, max_positions=48)


def hf_config(config: XLMConfig = TINY, causal: bool = True, lang2id: dict[str, int] | None = None) -> HFConfig:
    """transformers' config for the same shape, with lang2id as in xlm-clm-ende-1024 unless given."""
    lang2id = lang2id or {"de": 0, "en": 1}
    return HFConfig(
        vocab_size=config.vocab_size,
        emb_dim=config.dim,
        n_layers=config.n_layers,
        n_heads=config.n_heads,
        n_langs=config.n_langs,
        max_position_embeddings=config.max_positions,
        causal=causal,
        use_lang_emb=True,
        lang2id=lang2id,
        id2lang={i: lang for lang, i in lang2id.items()},
        dropout=0.0,
        attention_dropout=0.0,
    )


def random_reference(
    config: XLMConfig = TINY, seed: int = 0, causal: bool = True, lang2id: dict[str, int] | None = None
) -> XLMWithLMHeadModel:
    """A reference model whose every parameter, LayerNorms and biases included, is random."""
    torch.manual_seed(seed)
    model = XLMWithLMHeadModel(hf_config(config, causal=causal, lang2id=lang2id)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name != "pred_layer.proj.weight":  # tied to the embeddings
                param.normal_(0.0, 0.5 if "layer_norm" in name else 0.2)
    return model


def reference_logits(model: XLMWithLMHeadModel, ids: list[int], lang_id: int) -> torch.Tensor:
    """(T, vocab) logits of the reference for one sequence under one language id."""
    input_ids = torch.tensor([ids])
    with torch.no_grad():
        return model(input_ids=input_ids, langs=torch.full_like(input_ids, lang_id)).logits[0]


def hub_state_dict(model: XLMWithLMHeadModel) -> dict[str, torch.Tensor]:
    """The reference's tensors as the hub's pytorch_model.bin holds them: both copies of the tied matrix."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def folder_tokenizer(folder, lang2id: dict[str, int]) -> XLMTokenizer:
    """transformers' tokenizer on a checkpoint folder's BPE files, cased, with its languages."""
    return XLMTokenizer(
        vocab_file=str(folder / "vocab.json"),
        merges_file=str(folder / "merges.txt"),
        do_lowercase_and_remove_accent=False,
        lang2id=lang2id,
        id2lang={i: lang for lang, i in lang2id.items()},
    )


def trained_ids(tokenizer: XLMTokenizer, text: str, lang: str) -> list[int]:
    """What the model was trained on: </s> (id 1), then the text's BPE ids under that language's rules."""
    return [1, *tokenizer.convert_tokens_to_ids(tokenizer._tokenize(text, lang=lang))]


def reference_ids(theirs: XLMTokenizer, text: str, lang: str) -> list[int]:
    """transformers' tokenize(): its own split of the specials, and `lang`'s Moses rules for the text between them.

    transformers 5's tokenize() calls _tokenize(segment) without `lang`, so a copy has `lang` bound into it.
    """
    bound = copy.copy(theirs)
    bound._tokenize = functools.partial(XLMTokenizer._tokenize, bound, lang=lang)
    return bound.convert_tokens_to_ids(bound.tokenize(text))


def reference_text_logprob(model: XLMWithLMHeadModel, ids: list[int], lang_id: int) -> float:
    """log p of a whole text under the reference: every token after the first, given those before it."""
    logprobs = reference_logits(model, ids, lang_id).double().log_softmax(-1)  # (T, V)
    return float(sum(logprobs[position - 1, ids[position]] for position in range(1, len(ids))))


def reference_fill_mask(folder, text: str, top_k: int = 5) -> list[dict]:
    """What the hub's Fill-Mask widget runs: transformers' fill-mask pipeline on the checkpoint folder as it is."""
    from transformers import pipeline

    return pipeline("fill-mask", model=str(folder), device="cpu")(text, top_k=top_k)
