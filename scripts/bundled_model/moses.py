"""Moses pre-tokenization, cased, each language with its own rules: the demo tokenizer's steps before BPE."""

from __future__ import annotations

from functools import cache
from multiprocessing import Pool
from pathlib import Path

import sacremoses

from xlm_demo.model.tokenizer import remove_non_printing, replace_unicode_punct


@cache
def _moses(lang: str) -> tuple[sacremoses.MosesPunctNormalizer, sacremoses.MosesTokenizer]:
    return sacremoses.MosesPunctNormalizer(lang=lang), sacremoses.MosesTokenizer(lang=lang)


def pretokenize(text: str, lang: str) -> list[str]:
    """Moses tokens of a text, as the demo's tokenizer makes them before BPE (spec §5.1 steps 1-4, no lowercasing)."""
    normalizer, tokenizer = _moses(lang)
    text = remove_non_printing(normalizer.normalize(replace_unicode_punct(text)))
    return tokenizer.tokenize(text, return_str=False, escape=False)


def _line(job: tuple[str, str]) -> str:
    line, lang = job
    return " ".join(pretokenize(line, lang))


def tokenize_file(source: Path, target: Path, lang: str, processes: int) -> None:
    """One Moses-tokenized line per line of source."""
    lines = source.read_text(encoding="utf-8").splitlines()
    with Pool(processes) as pool:
        tokenized = pool.map(_line, [(line, lang) for line in lines], chunksize=256)
    target.write_text("".join(line + "\n" for line in tokenized), encoding="utf-8")
