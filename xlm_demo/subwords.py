"""Which subwords occur in German words only, English words only, or both: for the language comparison."""

from pathlib import Path

import torch

from .tokenizer import Tokenizer

WORD_LISTS = Path(__file__).resolve().parent.parent / "assets" / "word-lists"
KINDS = ("de", "en", "shared")  # German-only, English-only, in words of both


def subword_masks(tokenizer: Tokenizer, folder: Path = WORD_LISTS) -> dict[str, torch.Tensor]:
    """(vocab,) boolean masks of the subwords the word lists' German and English words are made of."""
    used = {lang: set(tokenizer.ids_of_words(read_words(folder / f"{lang}.txt"))) for lang in ("de", "en")}
    members = {"de": used["de"] - used["en"], "en": used["en"] - used["de"], "shared": used["de"] & used["en"]}
    masks = {}
    for kind in KINDS:
        mask = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        mask[sorted(members[kind] - {3})] = True  # <unk> belongs to no language
        masks[kind] = mask
    return masks


def read_words(path: Path) -> list[str]:
    """One word per line; a missing list is an empty one."""
    return path.read_text(encoding="utf-8").split() if path.is_file() else []


def mass_by_kind(probs: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """How much of a (vocab,) distribution falls on each kind of subword."""
    return {kind: float(probs[mask.to(probs.device)].sum()) for kind, mask in masks.items()}
