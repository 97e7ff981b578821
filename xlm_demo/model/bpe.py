"""Byte-pair encoding of Moses tokens: fastBPE where it is built, else a pure-Python twin with the same output."""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

log = logging.getLogger("xlm_demo")

WORD_END = "</w>"  # marks the last symbol of a word in merges and in transformers' pieces
BACKENDS = ("auto", "fastBPE", "python")
NATIVE_UNSAFE = re.compile("[\x00\ud800-\udfff]")  # fastBPE stops a word at NUL; surrogates cannot become UTF-8
SEEN_WORDS = 200_000  # words whose pieces fastBPE's side keeps, as PythonBPE's cache: a few tens of MB


def read_merges(codes_path: Path) -> dict[tuple[str, str], int]:
    """Merge ranks of a fastBPE codes / transformers merges.txt file: `left right count` per line."""
    ranks = {}
    # As transformers reads it: rank = line index; a repeated pair keeps its last rank; blank lines rank nothing
    # (a "#version: 0.2" header ranks a pair of its own there too). Unlike transformers, which drops the last line
    # whatever it holds, a last merge without a newline is kept, as fastBPE keeps it.
    for i, line in enumerate(Path(codes_path).read_text(encoding="utf-8").split("\n")):
        fields = line.split()
        if len(fields) >= 2:
            ranks[fields[0], fields[1]] = i
    return ranks


def split_words(words: list[str]) -> list[str]:
    """The words BPE sees: whitespace inside a word separates words, as no merge can hold it; empty ones go."""
    return [part for word in words for part in word.split()]


class PythonBPE:
    """transformers' XLMTokenizer.bpe: merge the lowest-ranked pair everywhere until none is left."""

    name = "python"

    def __init__(self, codes_path: Path):
        self.ranks = read_merges(codes_path)
        self.word_pieces = lru_cache(maxsize=200_000)(self._word_pieces)

    def apply(self, words: list[str]) -> list[str]:
        """BPE pieces of Moses tokens: "xx" continues a word, "yy</w>" ends one."""
        return [piece for word in split_words(words) for piece in self.word_pieces(word)]

    def _word_pieces(self, word: str) -> tuple[str, ...]:
        """One non-empty word's pieces; `word_pieces` is its cached form."""
        symbols = (*word[:-1], word[-1] + WORD_END)
        while len(symbols) > 1:
            best = min(pairwise(symbols), key=lambda pair: self.ranks.get(pair, sys.maxsize))
            if best not in self.ranks:
                break
            symbols = merge_pair(symbols, best)
        return symbols


def merge_pair(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Every non-overlapping occurrence of `pair` merged, left to right."""
    merged, i = [], 0
    while i < len(symbols):
        if symbols[i : i + 2] == pair:
            merged.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return tuple(merged)


class FastBPE:
    """fastBPE's C++ merges, given no vocabulary: with one it would un-merge units that transformers keeps."""

    name = "fastBPE"

    def __init__(self, codes_path: Path):
        import fastBPE

        self.python = PythonBPE(codes_path)  # parses the file safely, and handles the words fastBPE would mangle
        self.seen: dict[str, list[str]] = {}  # word -> its pieces
        with tempfile.TemporaryDirectory(prefix="xlm-demo-codes-") as folder:
            codes = Path(folder) / "codes"  # fastBPE segfaults on a blank line and exits on a missing file
            ranked = sorted(self.python.ranks, key=self.python.ranks.get)
            codes.write_text("".join(f"{left} {right} 0\n" for left, right in ranked), encoding="utf-8")
            with silenced_native_output():  # it prints "Loading codes from ..." from C++
                self.bpe = fastBPE.fastBPE(str(codes))

    def apply(self, words: list[str]) -> list[str]:
        """BPE pieces of Moses tokens: "xx" continues a word, "yy</w>" ends one. A word seen before is looked up: a
        keystroke's text differs from the last one by a word or two."""
        words, seen = split_words(words), self.seen  # this call keeps the dict it read, whatever another thread does
        new = [word for word in dict.fromkeys(words) if word not in seen]
        native = iter(self.bpe.apply([word for word in new if not NATIVE_UNSAFE.search(word)]))
        for word in new:
            seen[word] = self.python.word_pieces(word) if NATIVE_UNSAFE.search(word) else hf_pieces(next(native))
        if len(seen) > SEEN_WORDS:
            self.seen = {}  # started again: a bound on memory, not a cache policy worth more
        return [piece for word in words for piece in seen[word]]


def hf_pieces(encoded: str) -> list[str]:
    """fastBPE's form of one word, "wi@@ ki@@ pedia", in transformers' form: "wi", "ki", "pedia</w>"."""
    units = encoded.split(" ")
    return [unit.removesuffix("@@") for unit in units[:-1]] + [units[-1] + WORD_END]


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


def fastbpe_importable() -> bool:
    """Whether the compiled fastBPE extension loads here."""
    try:
        import fastBPE  # noqa: F401
    except ImportError:
        return False
    return True


def load_bpe(codes_path: Path, backend: str = "auto") -> PythonBPE | FastBPE:
    """fastBPE when it loads ("auto"), else the pure-Python BPE; both give the same pieces."""
    if backend not in BACKENDS:
        raise ValueError(f"The BPE backend must be one of {', '.join(BACKENDS)}, not {backend!r}.")
    native = backend == "fastBPE" or (backend == "auto" and fastbpe_importable())
    bpe = FastBPE(codes_path) if native else PythonBPE(codes_path)
    log.info("BPE: %s (backend=%r), merges from %s", bpe.name, backend, codes_path)
    return bpe
