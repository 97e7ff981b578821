"""BPE files made in the tests: a tiny learner over a bilingual corpus, and the real ende files where present."""

from __future__ import annotations

import json
from collections import Counter
from itertools import pairwise
from pathlib import Path

from xlm_demo.bpe import PythonBPE

SPECIALS = ["<s>", "</s>", "<pad>", "<unk>", *(f"<special{i}>" for i in range(10))]

BILINGUAL_CORPUS = """
The President's house was built in 1792, and it is still standing today.
"I don't think so," she said, looking at the old map of the city.
Wikipedia was used to train many language models in the last decade.
The weather in Berlin is cold and grey in November, but warm in July.
Scientists found that the new well-known method works 20% better.
He paid $4.50 for a cup of coffee at the station near the river.
Die Katze des Präsidenten schläft über dem warmen Ofen in der Küche.
Für die Straße in München braucht man heute keinen großen Ärger zu fürchten.
„Ich weiß es nicht“, sagte der Lehrer, während die Schüler lachten.
Das Wetter in Hamburg ist im Herbst oft nass und windig.
Die Regierung hat gestern ein neues Gesetz über Energie beschlossen.
Österreich und die Schweiz liegen südlich von Deutschland; Zürich ist groß.
Er kaufte 3,5 Kilogramm Äpfel für den Kuchen seiner Großmutter.
The children played in the garden while their parents cooked dinner.
Es war einmal ein König, der hatte drei Töchter und einen großen Garten.
Once upon a time there was a king who had three daughters and a large garden.
""".strip()


def words_of(text: str) -> list[str]:
    """Whitespace words; the learner does not need Moses to make valid codes."""
    return text.split()


def learn_codes(text: str, n_merges: int) -> list[tuple[str, str, int]]:
    """BPE merges learned greedily on the words of `text`, most frequent pair first (ties: lexical order)."""
    vocab = Counter(tuple([*word[:-1], word[-1] + "</w>"]) for word in words_of(text))
    codes = []
    for _ in range(n_merges):
        pairs = Counter()
        for symbols, count in vocab.items():
            for pair in pairwise(symbols):
                pairs[pair] += count
        if not pairs:
            break
        (left, right), count = min(pairs.items(), key=lambda item: (-item[1], item[0]))
        codes.append((left, right, count))
        vocab = Counter({merge_pair(symbols, left, right): n for symbols, n in vocab.items()})
    return codes


def merge_pair(symbols: tuple[str, ...], left: str, right: str) -> tuple[str, ...]:
    merged, i = [], 0
    while i < len(symbols):
        if i < len(symbols) - 1 and symbols[i] == left and symbols[i + 1] == right:
            merged.append(left + right)
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return tuple(merged)


def write_codes(path: Path, codes: list[tuple[str, str, int]]) -> None:
    """fastBPE codes / transformers merges.txt: `left right count` per line."""
    path.write_text("".join(f"{a} {b} {n}\n" for a, b, n in codes), encoding="utf-8")


def vocab_from_codes(codes: list[tuple[str, str, int]], words: list[str]) -> dict[str, int]:
    """transformers' vocab.json: specials, then every piece the codes make of `words`, then single characters."""
    codes_path = Path(_scratch()) / "codes"
    write_codes(codes_path, codes)
    bpe = PythonBPE(codes_path)
    pieces = Counter(piece for piece in bpe.apply(words))
    chars = sorted({char for word in words for char in word})
    ordered = [piece for piece, _ in sorted(pieces.items(), key=lambda item: (-item[1], item[0]))]
    for char in chars:
        ordered += [char, char + "</w>"]
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for piece in ordered:
        vocab.setdefault(piece, len(vocab))
    return vocab


def write_vocab_json(path: Path, vocab: dict[str, int]) -> None:
    path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")


def real_bpe_dir() -> Path | None:
    """../shared/xlm-ende-bpe beside the project, where it exists (it is not part of a user's clone)."""
    folder = Path(__file__).resolve().parents[2] / "shared" / "xlm-ende-bpe"
    return folder if (folder / "codes_ende").is_file() and (folder / "vocab_ende").is_file() else None


def real_vocab_json(folder: Path, out: Path) -> Path:
    """The real vocab_ende turned into transformers' vocab.json (id = 14 + line index)."""
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    lines = (folder / "vocab_ende").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines, start=len(SPECIALS)):
        unit = line.split(" ")[0]
        vocab[unit[:-2] if unit.endswith("@@") else unit + "</w>"] = i
    write_vocab_json(out, vocab)
    return out


def _scratch() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="xlm-demo-bpe-")
