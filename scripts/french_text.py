"""French running text for the word lists: Debian's French documentation, cleaned as the bundled model's text is."""

from __future__ import annotations

import re
from multiprocessing import Pool
from pathlib import Path

from scripts.bundled_model import corpus, extract, moses, sources
from scripts.bundled_model.settings import FULL
from scripts.bundled_model.sources import HANDBOOK_LICENCE, LIBREOFFICE_LICENCE, REFERENCE_LICENCE, Source

# Debian 12 has no French fortunes package; these three are its French documentation.
FRENCH_SOURCES = (
    Source("libreoffice-help-fr", "fr", "html", ("usr/share/libreoffice/help/fr/text/**/*.html",), LIBREOFFICE_LICENCE),
    Source("debian-handbook", "fr", "html", ("usr/share/doc/debian-handbook/html/fr-FR/*.html",), HANDBOOK_LICENCE),
    Source("debian-reference-fr", "fr", "html", ("usr/share/debian-reference/*.fr.html",), REFERENCE_LICENCE),
)
# French function words found in neither corpus.FUNCTION_WORDS list ("des" is German too, "en" is left out).
FRENCH_WORDS = frozenset({
    "le", "la", "les", "du", "et", "est", "une", "un", "pour", "dans", "que", "qui", "pas", "sur", "avec", "ce",
    "cette", "ces", "sont", "vous", "il", "elle", "au", "aux", "par", "plus", "ou", "être", "peut", "son", "sa",
    "ses", "leur", "mais", "comme", "nous", "ont", "été", "fait", "aussi", "tout", "lorsque", "votre", "vos"
})  # fmt: skip
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def is_french(paragraph: str) -> bool:
    """Whether French function words clearly outnumber German and English ones."""
    words = [w.lower() for w in WORD.findall(paragraph)]
    french = sum(w in FRENCH_WORDS for w in words)
    others = max(sum(w in corpus.FUNCTION_WORDS[lang] for w in words) for lang in corpus.FUNCTION_WORDS)
    return french >= 1 and french > 2 * others


def paragraphs(root: Path) -> list[str]:
    """Every distinct French prose paragraph of the French sources unpacked under root."""
    seen: dict[str, None] = {}
    for source in FRENCH_SOURCES:
        for path in sources.files(source, root):
            for document in extract.documents(source.kind, path):
                for paragraph in document:
                    if corpus.is_prose(paragraph, FULL) and is_french(paragraph):
                        seen.setdefault(paragraph)
    return list(seen)


def _tokenized(paragraph: str) -> str:
    return " ".join(moses.pretokenize(paragraph, "fr"))


def moses_text(build: Path) -> Path:
    """build/moses.fr: the French paragraphs Moses-tokenized with French rules, one a line (made once)."""
    target = build / "moses.fr"
    if not target.is_file():
        fetched = sources.fetch(build / "packages", FRENCH_SOURCES)
        versions = ", ".join(f"{name} {info['version']}" for name, info in fetched.items())
        print(f"fr: {versions}", flush=True)
        with Pool(FULL.threads) as pool:
            lines = pool.map(_tokenized, paragraphs(build / "packages"), chunksize=256)
        target.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return target
