"""Which subwords occur in one language's words only, or in several's: for the language comparison."""

from pathlib import Path

import torch

from .tokenizer import UNK_ID, Tokenizer

WORD_LISTS = Path(__file__).resolve().parents[2] / "assets" / "word-lists"
SHARED = "shared"  # the kind of subwords found in the words of two or more languages


def subword_masks(tokenizer: Tokenizer, langs: tuple[str, ...], folder: Path = WORD_LISTS) -> dict[str, torch.Tensor]:
    """(vocab,) boolean masks: each language's own subwords, and the shared ones; {} without two word lists.

    A language is one of the checkpoint's with a list in `folder` (`<code>.txt`); a language without one is left out.
    """
    listed = [lang for lang in langs if (folder / f"{lang}.txt").is_file()]
    if len(listed) < 2:
        return {}
    used = {lang: set(tokenizer.ids_of_words(read_words(folder / f"{lang}.txt"))) - {UNK_ID} for lang in listed}
    members = {lang: used[lang].difference(*(used[o] for o in listed if o != lang)) for lang in listed}
    members[SHARED] = {i for lang in listed for i in used[lang]}.difference(*members.values())
    masks = {}
    for kind, ids in members.items():
        mask = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        mask[sorted(ids)] = True
        masks[kind] = mask
    return masks


def read_words(path: Path) -> list[str]:
    """One word per line."""
    return path.read_text(encoding="utf-8").split()


def mass_by_kind(probs: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """How much of a (vocab,) distribution falls on each kind of subword."""
    return {kind: float(probs[mask.to(probs.device)].sum()) for kind, mask in masks.items()}
