"""A checkpoint's languages: their names, colours, pairs, and whether sacremoses has Moses rules for them."""

from __future__ import annotations

import logging
from functools import cache
from itertools import combinations

log = logging.getLogger("xlm_demo")

# The languages of XLM's released checkpoints (ende, enfr, enro, xnli15, 17 and 100 languages), by ISO 639-1 code.
NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "fr": "French", "hi": "Hindi", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sv": "Swedish", "sw": "Swahili",
    "th": "Thai", "tr": "Turkish", "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip
# English blue and German orange as before, French green; the others share a palette by their place in NAMES.
COLOURS = {"en": "#2563eb", "de": "#ea580c", "fr": "#16a34a"}
PALETTE = ("#9333ea", "#db2777", "#0891b2", "#ca8a04", "#4b5563")


def name(lang: str) -> str:
    """The language's English name, or its code where this table lacks it."""
    return NAMES.get(lang, lang)


def names(langs) -> str:
    """ "English and French", "German, English and French": for titles and sentences."""
    named = [name(lang) for lang in langs]
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


def listing(langs) -> str:
    """ "en (English), fr (French)": language codes with their names, for sentences."""
    return ", ".join(f"{lang} ({name(lang)})" for lang in langs)


def log_languages(lang2id: dict[str, int]) -> None:
    """Say which languages the checkpoint has, and which of them sacremoses cannot tokenize."""
    log.info("languages: %s", ", ".join(f"{lang} ({name(lang)}) = {i}" for lang, i in lang2id.items()))
    lacking = [lang for lang in lang2id if lang not in moses_languages()]
    if lacking:
        log.warning("sacremoses has no Moses rules for %s: text in them is refused, not tokenized", names(lacking))


def ordered(lang2id: dict[str, int]) -> list[str]:
    """The checkpoint's languages as the page lists them: English first, then the others in id order."""
    return sorted(lang2id, key=lambda lang: (lang != "en", lang2id[lang]))


def choices(lang2id: dict[str, int]) -> list[tuple[str, str]]:
    """(label, code) for each language of a checkpoint, English first."""
    return [(name(lang), lang) for lang in ordered(lang2id)]


def default(lang2id: dict[str, int]) -> str:
    """English where the checkpoint has it, else its first language."""
    return "en" if "en" in lang2id else next(iter(lang2id))


def colour(lang: str) -> str:
    """The language's colour on every chart."""
    return COLOURS.get(lang) or PALETTE[sorted(NAMES).index(lang) % len(PALETTE) if lang in NAMES else -1]


def pairs(langs) -> list[tuple[str, str]]:
    """Every unordered pair of languages, in the order given."""
    return list(combinations(langs, 2))


@cache
def moses_languages() -> frozenset[str]:
    """The language codes sacremoses has non-breaking prefixes, and so rules, for."""
    from sacremoses.corpus import NonbreakingPrefixes

    return frozenset(NonbreakingPrefixes().available_langs.values())


def check_moses(lang: str) -> str:
    """The code, if sacremoses has rules for it; sacremoses itself would use English rules without a word."""
    if lang not in moses_languages():
        raise ValueError(
            f"sacremoses has no Moses rules for {name(lang)} ({lang!r}), so its text cannot be tokenized as it "
            "was in training; this demo does not substitute English rules."
        )
    return lang
