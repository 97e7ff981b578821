"""Text <-> ids per language, through the preprocessing XLM was trained with."""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from itertools import groupby
from pathlib import Path
from typing import NamedTuple

import sacremoses

from . import chunks
from .bpe import WORD_END, FastBPE, PythonBPE, load_bpe
from .languages import check_moses

N_SPECIAL = 14  # <s> </s> <pad> <unk> <special0..9>, ids 0-13 in every XLM dictionary
EOS_ID = 1  # </s>: XLM's sentence separator, and the start token the engine adds
UNK_ID = 3
# What each special token is for, in XLM's dictionary order: (ids, as written, role); the model panel lists them.
SPECIAL_ROLES = (
    ("0", "<s>", "what transformers' `encode` puts first; never in this model's training"),
    ("1", "</s>", "starts every sequence and separates sentences in training; the demo's start token"),
    ("2", "<pad>", "pads batches to one length; never a training target"),
    ("3", "<unk>", "a BPE unit the vocabulary does not hold"),
    ("4", "<special0>", "SEP_WORD in XLM's dictionary; not in its causal-LM streams"),
    ("5", "<special1>", "the mask token of XLM's masked-LM training; never seen by this causal model"),
    ("6-13", "<special2> … <special9>", "reserved, never used"),
)

# Moses' replace-unicode-punctuation.perl: full-width and typographic punctuation to ASCII.
UNICODE_PUNCT = {
    "，": ",", "、": ",", "”": '"', "“": '"', "∶": ":", "：": ":", "？": "?", "《": '"', "》": '"', "）": ")",
    "！": "!", "（": "(", "；": ";", "」": '"', "「": '"', "～": "~", "’": "'", "…": "...", "━": "-", "〈": "<",
    "〉": ">", "【": "[", "】": "]", "％": "%", **{chr(0xFF10 + d): str(d) for d in range(10)},
}  # fmt: skip
PUNCT_TABLE = str.maketrans(UNICODE_PUNCT)
FULL_STOPS = re.compile(r"[。．]\s*")  # ideographic and full-width full stops swallow the spaces after them
PIECES_KEPT = 1 << 15  # pieces of text (a few words each) whose ids each tokenizer keeps, least recently used out


def replace_unicode_punct(text: str) -> str:
    """Full-width and typographic punctuation and digits as ASCII, as Moses' script does."""
    return FULL_STOPS.sub(". ", text).translate(PUNCT_TABLE)


class NonPrinting(dict):
    """str.translate's table dropping every character of a Unicode category C*, filled as characters are seen."""

    def __missing__(self, code: int) -> int | None:
        self[code] = None if unicodedata.category(chr(code)).startswith("C") else code
        return self[code]


NON_PRINTING = NonPrinting()


def remove_non_printing(text: str) -> str:
    """Drop control, format, surrogate, private-use and unassigned characters (Unicode categories C*)."""
    return text.translate(NON_PRINTING)


def lowercase_and_strip_accents(tokens: list[str]) -> list[str]:
    """XLM's lowercase_and_remove_accent: lower case, NFD, drop combining marks (Mn)."""
    text = unicodedata.normalize("NFD", " ".join(tokens).lower())
    return "".join(char for char in text if unicodedata.category(char) != "Mn").lower().split(" ")


def vocab_is_cased(vocab: dict[str, int]) -> bool:
    """Whether the vocabulary was learned on cased text: over 1% of its non-special units hold an uppercase letter."""
    units = [unit for unit, i in vocab.items() if i >= N_SPECIAL]
    return sum(any(char.isupper() for char in unit) for unit in units) > 0.01 * len(units)


def specials_pattern(specials: list[str]) -> re.Pattern:
    """A pattern whose split() cuts text around the specials written in it (case-sensitive, as transformers does).

    Its one capturing group keeps each special in the result: plain text at even indices, a special at odd ones.
    """
    alternatives = "|".join(map(re.escape, sorted(filter(None, specials), key=len, reverse=True)))
    return re.compile(f"({alternatives or '(?!)'})")  # (?!) matches nothing: a vocabulary without specials


class Moses(NamedTuple):
    """sacremoses' tools for one language; slow to build, so built once."""

    normalizer: sacremoses.MosesPunctNormalizer
    tokenizer: sacremoses.MosesTokenizer
    detokenizer: sacremoses.MosesDetokenizer


class Tokenizer:
    """XLM's training pipeline: punctuation, Moses with each language's rules, optional lowercasing, BPE."""

    def __init__(
        self, vocab: dict[str, int], bpe: PythonBPE | FastBPE, lowercase: bool, langs: tuple[str, ...] = ("de", "en")
    ):
        self.vocab = vocab
        self.bpe = bpe
        self.lowercase = lowercase  # only for an uncased vocabulary: the ende one is cased (spec §5.4)
        self.langs = langs
        self.pieces = [""] * (max(vocab.values()) + 1)
        for piece, i in vocab.items():
            self.pieces[i] = piece
        self._moses: dict[str, Moses] = {}
        self.specials = specials_pattern(self.pieces[:N_SPECIAL])
        self.piece_ids = functools.lru_cache(maxsize=PIECES_KEPT)(self._piece_ids)

    @classmethod
    def from_files(
        cls,
        vocab_json: Path,
        merges_txt: Path,
        lowercase: bool,
        bpe_backend: str = "auto",
        langs: tuple[str, ...] = ("de", "en"),
    ) -> Tokenizer:
        """A tokenizer from transformers' vocab.json and merges.txt (the fastBPE codes file)."""
        vocab = json.loads(Path(vocab_json).read_text(encoding="utf-8"))
        return cls(vocab, load_bpe(merges_txt, bpe_backend), lowercase, langs)

    @property
    def vocab_size(self) -> int:
        """Ids run from 0 to vocab_size - 1."""
        return len(self.pieces)

    def moses(self, lang: str) -> Moses:
        """The Moses tools with `lang`'s rules; an unsupported language is a ValueError."""
        if lang not in self.langs:
            raise ValueError(f"Language {lang!r} is not supported here; use one of: {', '.join(self.langs)}.")
        if lang not in self._moses:
            check_moses(lang)
            self._moses[lang] = Moses(
                sacremoses.MosesPunctNormalizer(lang=lang),
                sacremoses.MosesTokenizer(lang=lang),
                sacremoses.MosesDetokenizer(lang=lang),
            )
        return self._moses[lang]

    def moses_tokens(self, text: str, lang: str) -> list[str]:
        """The words BPE sees: punctuation normalised, Moses-tokenized with `lang`'s rules, lowercased if asked."""
        moses = self.moses(lang)
        text = remove_non_printing(moses.normalizer.normalize(replace_unicode_punct(text)))
        tokens = moses.tokenizer.tokenize(text, return_str=False, escape=False)  # tokenizer.perl -no-escape
        if self.lowercase:
            tokens = lowercase_and_strip_accents(tokens)
        return [token for token in tokens if token]

    def tokenize(self, text: str, lang: str) -> list[str]:
        """BPE pieces in transformers' form: "xx" continues a word, "yy</w>" ends one."""
        return self.bpe.apply(self.moses_tokens(text, lang))

    def encode(self, text: str, lang: str, literal: bool = False) -> list[int]:
        """Ids of the text alone: no start token, no trailing </s>; unknown pieces become <unk>.

        Specials written in the text (`</s>`, `<special1>` ...) are their ids, as in transformers, unless `literal`.
        """
        parts = [text] if literal else self.specials.split(text)  # text, special, text, ...
        ids = []
        for i, part in enumerate(parts):
            if i % 2:
                ids.append(self.vocab.get(part, UNK_ID))
            else:  # cut where tokenizing cannot see across, each piece's ids cached: an edit tokenizes its piece
                for piece in chunks.pieces(part):
                    ids += self.piece_ids(piece, lang)
        return ids

    def _piece_ids(self, text: str, lang: str) -> tuple[int, ...]:
        """Ids of a text without specials; `piece_ids` is its cached form."""
        return tuple(self.vocab.get(piece, UNK_ID) for piece in self.tokenize(text, lang))

    def ids_of_words(self, words: list[str]) -> list[int]:
        """Ids of words that are already Moses tokens (no punctuation handling), lowercased if the vocab is."""
        if self.lowercase:
            words = lowercase_and_strip_accents(words)
        return [self.vocab.get(piece, UNK_ID) for piece in self.bpe.apply(words)]

    def piece(self, token_id: int) -> str:
        """The vocabulary's own form of an id."""
        return self.pieces[token_id]

    def ends_word(self, token_id: int) -> bool:
        """Whether the piece is a word's last: "pedia</w>" (shown "pedia"), not "wi" (shown "wi@@")."""
        return self.pieces[token_id].endswith(WORD_END)

    def display(self, token_id: int) -> str:
        """A readable form that shows word boundaries: "pedia</w>" is "pedia", a non-final "wi" is "wi@@"."""
        piece = self.pieces[token_id]
        if token_id < N_SPECIAL:
            return piece
        return piece.removesuffix(WORD_END) if self.ends_word(token_id) else f"{piece}@@"

    def decode(self, ids: list[int], lang: str, literal: bool = False) -> str:
        """Readable text that encodes back to the same specials: words Moses-detokenized, specials as themselves.

        `literal` text could not name a special, so there they are left out (but for <unk>) and </s> is a space.
        """
        detokenizer = self.moses(lang).detokenizer
        is_special = (lambda i: i == EOS_ID) if literal else (lambda i: i < N_SPECIAL and i != UNK_ID)
        parts = []
        for special, group in groupby(ids, is_special):
            if not special:
                parts.append(detokenizer.detokenize(self.words(list(group)), unescape=False))  # never escaped
            elif not literal:
                parts.extend(self.pieces[i] for i in group)
        return " ".join(part for part in parts if part)

    def words(self, ids: list[int]) -> list[str]:
        """Pieces joined into words at each </w>; a word left open at the end still counts."""
        words, word = [], ""
        for token_id in ids:
            if token_id < N_SPECIAL and token_id != UNK_ID:
                continue
            piece = "<unk>" + WORD_END if token_id == UNK_ID else self.pieces[token_id]
            word += piece.removesuffix(WORD_END)
            if piece.endswith(WORD_END):
                words.append(word)
                word = ""
        return [*words, word] if word else words
