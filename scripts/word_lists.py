"""Write assets/word-lists/{de,en,fr}.txt: frequent words seen in one language's text and in no other's.

Run as `python -m scripts.word_lists` (`make word-lists`). German and English come from the Moses-tokenized training
text that `make bundled-model` prepares (build/bundled-model/moses/train.{de,en}; made here from its Debian packages
if missing), French from Debian's French documentation (scripts/french_text.py). The page uses the lists to sort a
checkpoint's subwords into those of one language only and shared ones, in its language comparison.
"""

import re
import sys
from collections import Counter
from pathlib import Path

from scripts import french_text
from scripts.bundled_model import build, moses, sources
from scripts.bundled_model.settings import FULL

ROOT = Path(__file__).resolve().parent.parent

BUNDLED_TEXT = FULL.build_dir / "moses"
BUILD = ROOT / "build" / "word-lists"
TARGET = ROOT / "assets" / "word-lists"
WORDS_PER_LANGUAGE = 3000
MIN_COUNT = 3
WORD = re.compile(r"^[^\W\d_]{2,}$")  # letters only, two or more


def counts(path: Path) -> Counter:
    """How often each alphabetic token occurs in a Moses-tokenized file."""
    with path.open(encoding="utf-8") as lines:
        return Counter(token for line in lines for token in line.split() if WORD.match(token))


def german_english_text() -> dict[str, Path]:
    """The bundled model's Moses-tokenized training text, its text stages run first where it is missing."""
    paths = {lang: BUNDLED_TEXT / f"train.{lang}" for lang in ("de", "en")}
    if not all(path.is_file() for path in paths.values()):
        build.prepare_text(FULL, build.Stages(FULL.build_dir))
        BUNDLED_TEXT.mkdir(exist_ok=True)
        for lang, path in paths.items():
            moses.tokenize_file(FULL.build_dir / "text" / f"train.{lang}", path, lang, FULL.threads)
    return paths


def main() -> int:
    try:
        texts = {**german_english_text(), "fr": french_text.moses_text(BUILD)}
    except sources.SourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    seen = {lang: counts(path) for lang, path in texts.items()}
    TARGET.mkdir(parents=True, exist_ok=True)
    for lang, own in seen.items():
        others = [count for other, count in seen.items() if other != lang]
        words = [w for w, n in own.most_common() if n >= MIN_COUNT and not any(c[w] for c in others)]
        (TARGET / f"{lang}.txt").write_text("\n".join(words[:WORDS_PER_LANGUAGE]) + "\n", encoding="utf-8")
        print(f"{lang}: {min(len(words), WORDS_PER_LANGUAGE)} words of {len(words)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
