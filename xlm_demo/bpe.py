"""Byte-pair encoding of Moses tokens: fastBPE where it is built, else a pure-Python twin with the same output."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

log = logging.getLogger("xlm_demo")

WORD_END = "</w>"


def read_merges(codes_path: Path) -> dict[tuple[str, str], int]:
    """Merge priorities from a fastBPE codes / transformers merges.txt file: `left right count` per line."""
    ranks = {}
    for line in Path(codes_path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.startswith("#version"):
            ranks.setdefault((parts[0], parts[1]), len(ranks))
    return ranks


class PythonBPE:
    """transformers' XLMTokenizer.bpe: merge the lowest-ranked pair everywhere until none is left."""

    name = "python"

    def __init__(self, codes_path: Path):
        self.ranks = read_merges(codes_path)
        self.word = lru_cache(maxsize=200_000)(self._word)

    def apply(self, words: list[str]) -> list[str]:
        """BPE pieces of Moses tokens: "xx" continues a word, "yy</w>" ends one."""
        return [piece for word in words if word for piece in self.word(word)]

    def _word(self, word: str) -> tuple[str, ...]:
        symbols = [*word[:-1], word[-1] + WORD_END]
        while len(symbols) > 1:
            pairs = set(pairwise(symbols))
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(symbols):
                if i < len(symbols) - 1 and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return tuple(symbols)


class FastBPE:
    """fastBPE's C++ merges, given no vocabulary: with one it would un-merge units that transformers keeps."""

    name = "fastBPE"

    def __init__(self, codes_path: Path):
        import fastBPE

        with silenced_native_output():  # it prints "Loading codes from ..." from C++
            self.bpe = fastBPE.fastBPE(str(codes_path))

    def apply(self, words: list[str]) -> list[str]:
        """BPE pieces of Moses tokens: "xx" continues a word, "yy</w>" ends one."""
        words = [word for word in words if word]
        if not words:
            return []
        encoded = self.bpe.apply([" ".join(words)])[0]  # "wiki@@ pe@@ dia was"
        return [unit[:-2] if unit.endswith("@@") else unit + WORD_END for unit in encoded.split(" ") if unit]


@contextmanager
def silenced_native_output() -> Iterator[None]:
    """Send what native code writes to stdout and stderr to /dev/null for a moment."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def load_bpe(codes_path: Path, backend: str = "auto") -> PythonBPE | FastBPE:
    """fastBPE when importable ("auto"), else the pure-Python BPE; both give the same pieces."""
    if backend not in ("auto", "fastBPE", "python"):
        raise ValueError(f"BPE backend must be auto, fastBPE or python, got {backend!r}")
    if backend != "python":
        try:
            bpe = FastBPE(codes_path)
        except ImportError:
            if backend == "fastBPE":
                raise
        else:
            log.info("BPE: fastBPE")
            return bpe
    log.info("BPE: pure Python (fastBPE is not installed)" if backend == "auto" else "BPE: pure Python")
    return PythonBPE(codes_path)
