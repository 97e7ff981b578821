"""Write assets/word-lists/{de,en}.txt: frequent words seen in one language's training text and never in the other.

Reads the Moses-tokenized text that `make bundled-model` prepares (build/bundled-model/moses/train.{de,en}); the
page uses the lists to tell German-only, English-only and shared subwords apart in its language comparison.
"""

import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "build" / "bundled-model" / "moses"
TARGET = ROOT / "assets" / "word-lists"
WORDS_PER_LANGUAGE = 3000
MIN_COUNT = 3
WORD = re.compile(r"^[^\W\d_]{2,}$")  # letters only, two or more


def counts(path: Path) -> Counter:
    """How often each alphabetic token occurs in a Moses-tokenized file."""
    with path.open(encoding="utf-8") as lines:
        return Counter(token for line in lines for token in line.split() if WORD.match(token))


def main() -> int:
    missing = [lang for lang in ("de", "en") if not (SOURCE / f"train.{lang}").is_file()]
    if missing:
        print(f"error: {SOURCE}/train.{missing[0]} is missing; run `make bundled-model` first", file=sys.stderr)
        return 2
    german, english = counts(SOURCE / "train.de"), counts(SOURCE / "train.en")
    TARGET.mkdir(parents=True, exist_ok=True)
    for lang, own, other in (("de", german, english), ("en", english, german)):
        words = [word for word, n in own.most_common() if n >= MIN_COUNT and other[word] == 0][:WORDS_PER_LANGUAGE]
        (TARGET / f"{lang}.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
        print(f"{lang}: {len(words)} words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
