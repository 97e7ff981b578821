"""BPE files made in the tests: a tiny learner over a bilingual corpus, and the real ende files where present."""

from __future__ import annotations

import json
import random
from collections import Counter
from itertools import pairwise
from pathlib import Path

import sacremoses

SPECIALS = ["<s>", "</s>", "<pad>", "<unk>", *(f"<special{i}>" for i in range(10))]  # ids 0-13
WORD_END = "</w>"

# Written for these tests: cased, umlauts and ß, apostrophes, quotes, numbers and hyphens, in both languages.
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
The committee's report, published on 12 March 2019, runs to 340 pages.
She's been working as a part-time nurse since the hospital reopened.
"Where are you going?" asked the driver, but nobody answered him.
Our team won the match 3-1 after a long and difficult second half.
The museum (built in 1870) is open from 9 a.m. to 5 p.m., except on public holidays.
It's a well-known fact that the river floods every spring.
They couldn't find the keys, so they waited for the landlord's son.
About 45,000 people live in the town, which was founded in the 13th century.
Der Bürgermeister sagte, die neue Brücke werde 2025 fertig sein.
Mein Großvater erzählt gern Geschichten aus seiner Kindheit in Köln.
„Kommst du morgen mit ins Kino?“, fragte Anna ihre Schwester.
Im Jahr 1989 fiel die Berliner Mauer, und viele Menschen feierten.
Die Straßenbahn fährt alle 10 Minuten vom Hauptbahnhof zum Flughafen.
Das Ergebnis der Umfrage überraschte sogar die erfahrenen Forscher.
Wir haben uns für ein kleines, gemütliches Hotel am See entschieden.
Es gibt keine einfache Lösung für dieses schwierige Problem.
Die Ärztin erklärte den Patienten die Vor- und Nachteile der Behandlung.
In der Schule lernen die Kinder Englisch, Französisch und Mathematik.
""".strip()


# Written for these tests: French with élisions, guillemets, non-breaking spaces before ? ! : ; and ligatures.
FRENCH_CORPUS = """
L'homme qu'il a vu hier n'est pas venu aujourd'hui, mais c'est d'accord.
« Je ne sais pas », dit l'enseignante, pendant que les élèves riaient.
Le temps à Paris est froid et gris en novembre, mais chaud en juillet.
Où vas-tu\u00a0? demanda le chauffeur, mais personne ne lui répondit\u00a0!
Il a payé 4,50 € pour un café à la gare, près de la rivière.
Les scientifiques ont trouvé que la nouvelle méthode fonctionne 20 % mieux.
Il était une fois un roi qui avait trois filles et un grand jardin.
Le cœur de l'œuvre : une sœur, un œil et des œufs ; voilà tout.
L'Assemblée nationale a adopté hier une loi sur l'énergie et l'écologie.
Jusqu'à présent, l'hôpital n'a jamais été fermé le dimanche.
Les enfants jouaient dans le jardin pendant que leurs parents préparaient le dîner.
Qu'est-ce que c'est\u00a0? C'est l'été, et il fait très beau\u00a0!
""".strip()


def moses_words(text: str) -> list[str]:
    """Moses tokens of each line of `text` (English rules, no escaping), as the learner counts them."""
    moses = sacremoses.MosesTokenizer(lang="en")
    return [word for line in text.splitlines() for word in moses.tokenize(line, return_str=False, escape=False)]


def learn_codes(text: str, n_merges: int) -> list[tuple[str, str, int]]:
    """BPE merges learned greedily on the Moses words of `text`: most frequent pair first, ties in string order."""
    words = Counter(initial_symbols(word) for word in moses_words(text))
    codes = []
    for _ in range(n_merges):
        pairs = Counter()
        for symbols, count in words.items():
            for pair in pairwise(symbols):
                pairs[pair] += count
        if not pairs:
            break
        (left, right), count = min(pairs.items(), key=lambda item: (-item[1], item[0]))
        codes.append((left, right, count))
        words = Counter({merge_pair(symbols, left, right): count for symbols, count in words.items()})
    return codes


def initial_symbols(word: str) -> tuple[str, ...]:
    """A word's characters, the last one marked as word-final."""
    return (*word[:-1], word[-1] + WORD_END)


def merge_pair(symbols: tuple[str, ...], left: str, right: str) -> tuple[str, ...]:
    """Each non-overlapping `left right` merged, left to right."""
    merged, i = [], 0
    while i < len(symbols):
        if i < len(symbols) - 1 and symbols[i] == left and symbols[i + 1] == right:
            merged.append(left + right)
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return tuple(merged)


def apply_codes(codes: list[tuple[str, str, int]], word: str) -> tuple[str, ...]:
    """The pieces of one word, each merge applied in turn (the same as lowest-rank-first for learned codes)."""
    symbols = initial_symbols(word)
    for left, right, _ in codes:
        symbols = merge_pair(symbols, left, right)
    return symbols


def write_codes(path: Path, codes: list[tuple[str, str, int]]) -> None:
    """fastBPE codes / transformers merges.txt: `left right count` per line."""
    path.write_text("".join(f"{left} {right} {count}\n" for left, right, count in codes), encoding="utf-8")


def vocab_from_codes(codes: list[tuple[str, str, int]], words: list[str]) -> dict[str, int]:
    """transformers' vocab.json: specials, the pieces the codes make of `words`, every merge's result, characters."""
    # With every merge's result and each character with and without </w>, no word of those characters is <unk>.
    counts = Counter(piece for word in words for piece in apply_codes(codes, word))
    pieces = sorted(counts, key=lambda piece: (-counts[piece], piece))
    merged = [left + right for left, right, _ in codes]
    chars = sorted({char for word in words for char in word})
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for piece in [*pieces, *merged, *(form for char in chars for form in (char, char + WORD_END))]:
        vocab.setdefault(piece, len(vocab))
    return vocab


def write_vocab_json(path: Path, vocab: dict[str, int]) -> None:
    """transformers' vocab.json."""
    path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")


def pseudo_words(count: int, seed: int = 0) -> list[str]:
    """Seeded random words over letters, umlauts, ß, accents, digits, hyphens and apostrophes, some capitalised."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzäöüßéèçABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÜ0123456789-'"
    return ["".join(rng.choices(alphabet, k=rng.randint(1, 16))) for _ in range(count)]


def real_bpe_dir() -> Path | None:
    """../shared/xlm-ende-bpe beside the project (codes_ende, vocab_ende), where it exists; not part of a clone."""
    folder = Path(__file__).resolve().parents[2] / "shared" / "xlm-ende-bpe"
    return folder if (folder / "codes_ende").is_file() and (folder / "vocab_ende").is_file() else None


def real_vocab_json(tmpdir: Path) -> Path:
    """The real vocab_ende as transformers' vocab.json in `tmpdir` (id = 14 + line index); merges.txt is codes_ende."""
    folder = real_bpe_dir()
    if folder is None:
        raise FileNotFoundError("the real BPE files (../shared/xlm-ende-bpe) are not beside this checkout")
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    lines = (folder / "vocab_ende").read_text(encoding="utf-8").rstrip("\n").split("\n")
    for i, line in enumerate(lines, start=len(SPECIALS)):
        unit = line.split(" ")[0]
        vocab[unit[:-2] if unit.endswith("@@") else unit + WORD_END] = i
    path = Path(tmpdir) / "vocab.json"
    write_vocab_json(path, vocab)
    return path
