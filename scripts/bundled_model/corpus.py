"""Clean, deduplicate and split the extracted text into train and held-out paragraphs per language."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

from . import extract, sources
from .settings import LANGS, Settings

# Function words that occur in one of the two languages only (no "in", "an", "was", "so", "will", "also").
FUNCTION_WORDS = {
    "de": frozenset(
        {
            "der",
            "die",
            "das",
            "und",
            "ist",
            "nicht",
            "ein",
            "eine",
            "einen",
            "dem",
            "den",
            "des",
            "zu",
            "mit",
            "von",
            "sich",
            "auf",
            "für",
            "ich",
            "sie",
            "es",
            "wird",
            "werden",
            "kann",
            "können",
            "oder",
            "wenn",
            "wie",
            "bei",
            "aus",
            "zum",
            "zur",
            "sind",
            "dass",
            "nur",
            "noch",
            "einer",
            "wir",
            "hat",
            "auch",
            "im",
            "über",
            "durch",
            "diese",
            "dieser",
            "diesem",
            "sein",
            "ihre",
            "ihr",
            "man",
        }
    ),
    "en": frozenset(
        {
            "the",
            "and",
            "is",
            "of",
            "to",
            "that",
            "it",
            "for",
            "you",
            "with",
            "on",
            "are",
            "this",
            "be",
            "as",
            "not",
            "or",
            "can",
            "by",
            "from",
            "if",
            "your",
            "will",
            "have",
            "at",
            "which",
            "they",
            "there",
            "when",
            "what",
            "would",
            "been",
            "their",
            "has",
            "its",
            "than",
            "these",
            "them",
            "into",
            "should",
        }
    ),
}
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
URL = re.compile(r"https?://|www\.|\S+@\S+\.\w")
# Program text that survives outside <pre>: braces, shell substitutions, calls, assignments, options.
CODE = re.compile(r"[{}\\|<>]|\$\(|\w\(\)|==|:=|;\s*$|^\s*[#$>] |\s--?[a-z][\w-]*=")


def language_of(text: str) -> str | None:
    """The language whose function words clearly dominate the text ("de" or "en"), else None."""
    words = [w.lower() for w in WORD.findall(text)]
    counts = {lang: sum(w in FUNCTION_WORDS[lang] for w in words) for lang in LANGS}
    de, en = counts["de"], counts["en"]
    if de >= 1 and de > 2 * en:
        return "de"
    if en >= 1 and en > 2 * de:
        return "en"
    return None


def keep(paragraph: str, lang: str, settings: Settings) -> bool:
    """Whether a paragraph is prose in the expected language, not code, markup, a URL or a fragment."""
    return is_prose(paragraph, settings) and language_of(paragraph) == lang


def is_prose(paragraph: str, settings: Settings) -> bool:
    """Whether a paragraph is running text, not code, markup, a URL or a fragment."""
    if len(paragraph) > settings.max_chars or len(paragraph.split()) < settings.min_words:
        return False
    if URL.search(paragraph) or CODE.search(paragraph):
        return False
    visible = [c for c in paragraph if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    return letters >= 0.75 * len(visible)


def build(root: Path, out: Path, settings: Settings) -> dict:
    """Write out/{train,heldout}.{de,en} (one paragraph a line); per-source statistics, also in out/corpus.json."""
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    splits = {(split, lang): [] for split in ("train", "heldout") for lang in LANGS}
    stats = []
    rng = random.Random(settings.seed)
    for source in sources.SOURCES:
        counts = Counter()
        for path in sources.files(source, root):
            for document in extract.documents(source.kind, path):
                split = "heldout" if rng.random() < settings.heldout_fraction else "train"
                counts["documents"] += 1
                for paragraph in document:
                    counts["paragraphs"] += 1
                    if not keep(paragraph, source.lang, settings):
                        continue
                    if paragraph in seen:
                        counts["duplicates"] += 1
                        continue
                    seen.add(paragraph)
                    splits[split, source.lang].append(paragraph)
                    counts[f"{split}_paragraphs"] += 1
                    counts[f"{split}_chars"] += len(paragraph) + 1
        stats.append({"package": source.package, "lang": source.lang, **counts})
    for (split, lang), paragraphs in splits.items():
        (out / f"{split}.{lang}").write_text("".join(p + "\n" for p in paragraphs), encoding="utf-8")
    summary = {
        "sources": stats,
        "totals": {
            f"{split}.{lang}": {"paragraphs": len(ps), "chars": sum(len(p) + 1 for p in ps)}
            for (split, lang), ps in splits.items()
        },
    }
    (out / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
