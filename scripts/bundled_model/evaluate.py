"""What the exported model does: held-out perplexity under each language id, and greedy continuations."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import sacremoses
import torch

from xlm_demo.model.checkpoint import load_checkpoint
from xlm_demo.model.weights import build_model
from xlm_demo.model.xlm import XLM

from .moses import pretokenize
from .streams import EOS
from .train import mean_nll

PROMPTS = {
    "de": ("Das Wetter ist heute", "Das Wichtigste im Leben ist", "Um ein Dokument zu öffnen,"),
    "en": ("The weather today is", "The most important thing in life is", "To open a document,"),
    "either": ("Linux", "LibreOffice"),  # names, the same in both languages: only the language id decides
}


def load_exported(folder: Path) -> XLM:
    """The exported model, read back the way the demo reads it."""
    checkpoint = load_checkpoint(str(folder))
    return build_model(checkpoint.config, checkpoint.state_dict)


def perplexity_table(
    model: XLM, heldout: dict[str, torch.Tensor], lang2id: dict[str, int], bptt: int, max_windows: int
) -> dict[str, dict[str, float]]:
    """Perplexity of each language's held-out text (rows) under each language id (columns)."""
    return {
        text: {
            lang_id: round(math.exp(mean_nll(model, tokens, lang2id[lang_id], bptt, max_windows)), 2)
            for lang_id in lang2id
        }
        for text, tokens in heldout.items()
    }


def bpe_split(tool: Path, codes: Path, lines: list[str]) -> list[list[str]]:
    """BPE units of already Moses-tokenized lines, through fastBPE's applybpe_stream."""
    result = subprocess.run(
        [str(tool), "applybpe_stream", str(codes)],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.split() for line in result.stdout.splitlines()]


@torch.no_grad()
def greedy(model: XLM, prompt_ids: list[int], lang: int, n_tokens: int) -> list[int]:
    """n_tokens greedy next tokens after `</s> prompt`, the stream start of training, under one language id."""
    ids = torch.tensor([[EOS, *prompt_ids]])  # (1, T)
    cache = model.new_cache(1, ids.shape[1] + n_tokens)
    langs = torch.tensor([[lang]])  # (1, 1), broadcast over every position
    hidden = model(ids, langs, cache)
    out = []
    for _ in range(n_tokens):
        next_id = int(model.logits(hidden[:, -1]).argmax(-1))
        out.append(next_id)
        hidden = model(torch.tensor([[next_id]]), langs, cache)
    return out


def detokenize(units: list[str], lang: str) -> str:
    """Readable text from BPE units: join `xx@@ yy` pieces, then undo Moses tokenization."""
    words = " ".join(units).replace("@@ ", "").removesuffix("@@").split()
    return sacremoses.MosesDetokenizer(lang=lang).detokenize(words)


def continuations(
    model: XLM, word2id: dict[str, int], lang2id: dict[str, int], tool: Path, codes: Path, n_tokens: int
) -> list[dict]:
    """Each prompt under each language id: its ids, the greedy ids and the text up to the first </s>."""
    id2word = {i: w for w, i in word2id.items()}
    rows = []
    for prompt_lang, prompts in PROMPTS.items():
        moses_lang = prompt_lang if prompt_lang in lang2id else "en"
        units = bpe_split(tool, codes, [" ".join(pretokenize(p, moses_lang)) for p in prompts])
        for prompt, prompt_units in zip(prompts, units, strict=True):
            prompt_ids = [word2id.get(u, 3) for u in prompt_units]
            for lang, lang_id in lang2id.items():
                ids = greedy(model, prompt_ids, lang_id, n_tokens)
                shown = ids[: ids.index(EOS)] if EOS in ids else ids
                text = detokenize(prompt_units + [id2word[i] for i in shown], lang)
                rows.append({"prompt": prompt, "lang": lang, "prompt_ids": prompt_ids, "ids": ids, "text": text})
    return rows
