"""Paragraphs of running text out of HTML pages and fortune files; no cleaning yet."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

# Elements whose end closes a paragraph; anything else (span, a, em, code) stays inline.
BLOCKS = frozenset(
    {"p", "li", "dt", "dd", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "title", "caption", "div", "br", "tr"}
)
# Elements whose text is not prose: program text, terminal sessions, navigation and scripts.
SKIPPED = frozenset({"pre", "script", "style", "noscript", "nav", "header", "aside", "kbd", "samp", "screen"})
SPACES = re.compile(r"\s+")


class ParagraphParser(HTMLParser):
    """Collects the text of block elements, one string per block, outside SKIPPED elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIPPED:
            self.skipping += 1
        elif tag in BLOCKS:
            self.flush()

    def handle_endtag(self, tag):
        if tag in SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in BLOCKS:
            self.flush()

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)

    def flush(self):
        text = SPACES.sub(" ", "".join(self.parts)).strip()
        if text:
            self.paragraphs.append(text)
        self.parts = []


def html_document(path: Path) -> list[str]:
    """The paragraphs of one HTML page."""
    parser = ParagraphParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    parser.flush()
    return parser.paragraphs


def fortune_documents(path: Path) -> list[list[str]]:
    """Each fortune of a fortune file (entries between `%` lines) as a document of paragraphs."""
    text = path.read_text(encoding="utf-8", errors="replace")
    documents = []
    for entry in re.split(r"^%\s*$", text, flags=re.MULTILINE):
        paragraphs = [SPACES.sub(" ", block).strip() for block in re.split(r"\n\s*\n", entry)]
        paragraphs = [p for p in paragraphs if p]
        if paragraphs:
            documents.append(paragraphs)
    return documents


def documents(kind: str, path: Path) -> list[list[str]]:
    """The documents of one file of the given kind."""
    if kind == "html":
        return [html_document(path)]
    if kind == "fortunes":
        return fortune_documents(path)
    raise ValueError(f"unknown source kind {kind!r}")
