"""Text <-> ids per language, through the preprocessing XLM was trained with."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import sacremoses

from .bpe import WORD_END, FastBPE, PythonBPE, load_bpe

N_SPECIAL = 14  # <s> </s> <pad> <unk> <special0..9>
UNK_ID = 3

# Moses' replace-unicode-punctuation.perl: full-width and typographic punctuation to ASCII.
UNICODE_PUNCT = {
    "，": ",", "、": ",", "”": '"', "“": '"', "∶": ":", "：": ":", "？": "?", "《": '"', "》": '"', "）": ")",
    "！": "!", "（": "(", "；": ";", "」": '"', "「": '"', "～": "~", "’": "'", "…": "...", "━": "-", "〈": "<",
    "〉": ">", "【": "[", "】": "]", "％": "%", **{chr(0xFF10 + d): str(d) for d in range(10)},
}  # fmt: skip
PUNCT_TABLE = str.maketrans(UNICODE_PUNCT)
FULL_STOPS = re.compile(r"[。．]\s*")


def replace_unicode_punct(text: str) -> str:
    """Full-width and typographic punctuation and digits as ASCII, as Moses' script does."""
    text = FULL_STOPS.sub(". ", text)
    return text.translate(PUNCT_TABLE)


def remove_non_printing(text: str) -> str:
    """Drop control, format, surrogate and unassigned characters (Unicode categories C*)."""
    return "".join(char for char in text if not unicodedata.category(char).startswith("C"))


def lowercase_and_strip_accents(tokens: list[str]) -> list[str]:
    """XLM's lowercase_and_remove_accent: lower case, NFD, drop combining marks."""
    text = unicodedata.normalize("NFD", " ".join(tokens).lower())
    return "".join(char for char in text if unicodedata.category(char) != "Mn").lower().split(" ")


def vocab_is_cased(vocab: dict[str, int]) -> bool:
    """Whether the vocabulary was learned on cased text: over 1% of its units hold an uppercase letter."""
    units = [token for token, i in vocab.items() if i >= N_SPECIAL]
    return sum(any(char.isupper() for char in unit) for unit in units) > 0.01 * max(len(units), 1)


class Tokenizer:
    """XLM's training pipeline: punctuation, Moses with each language's rules, optional lowercasing, BPE."""

    def __init__(self, vocab: dict[str, int], bpe: PythonBPE | FastBPE, lowercase: bool):
        self.vocab = vocab
        self.bpe = bpe
        self.lowercase = lowercase
        self.pieces = [""] * (max(vocab.values()) + 1)
        for piece, i in vocab.items():
            self.pieces[i] = piece
        self._normalizers: dict[str, sacremoses.MosesPunctNormalizer] = {}
        self._tokenizers: dict[str, sacremoses.MosesTokenizer] = {}
        self._detokenizers: dict[str, sacremoses.MosesDetokenizer] = {}

    @classmethod
    def from_files(cls, vocab_json: Path, merges_txt: Path, lowercase: bool, bpe_backend: str = "auto") -> Tokenizer:
        """A tokenizer from transformers' vocab.json and merges.txt."""
        vocab = json.loads(Path(vocab_json).read_text(encoding="utf-8"))
        return cls(vocab, load_bpe(merges_txt, bpe_backend), lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def moses_tokens(self, text: str, lang: str) -> list[str]:
        """The words BPE sees: punctuation normalised, Moses-tokenized with `lang`'s rules, lowercased if asked."""
        if lang not in self._tokenizers:
            self._normalizers[lang] = sacremoses.MosesPunctNormalizer(lang=lang)
            self._tokenizers[lang] = sacremoses.MosesTokenizer(lang=lang)
        text = self._normalizers[lang].normalize(replace_unicode_punct(text))
        tokens = self._tokenizers[lang].tokenize(remove_non_printing(text), return_str=False, escape=False)
        if self.lowercase:
            tokens = lowercase_and_strip_accents(tokens)
        return [token for token in tokens if token]

    def tokenize(self, text: str, lang: str) -> list[str]:
        """BPE pieces in transformers' form: "xx" continues a word, "yy</w>" ends one."""
        return self.bpe.apply(self.moses_tokens(text, lang))

    def encode(self, text: str, lang: str) -> list[int]:
        """Ids of the text alone: no start token, no trailing </s>; unknown pieces become <unk>."""
        return [self.vocab.get(piece, UNK_ID) for piece in self.tokenize(text, lang)]

    def piece(self, token_id: int) -> str:
        """The vocabulary's own form of an id."""
        return self.pieces[token_id]

    def display(self, token_id: int) -> str:
        """A readable form that shows word boundaries: "pedia</w>" is "pedia", a non-final "wi" is "wi@@"."""
        piece = self.pieces[token_id]
        if token_id < N_SPECIAL:
            return piece
        return piece[: -len(WORD_END)] if piece.endswith(WORD_END) else f"{piece}@@"

    def decode(self, ids: list[int], lang: str) -> str:
        """Readable text: pieces joined into words, sentences split at </s>, each Moses-detokenized; <unk> shown."""
        if lang not in self._detokenizers:
            self._detokenizers[lang] = sacremoses.MosesDetokenizer(lang=lang)
        sentences, words, word = [], [], ""
        for token_id in ids:
            if token_id < N_SPECIAL and token_id != UNK_ID:
                if token_id == 1 and (words or word):  # </s> ends a sentence
                    sentences.append([*words, word] if word else words)
                    words, word = [], ""
                continue
            piece = "<unk></w>" if token_id == UNK_ID else self.pieces[token_id]
            if piece.endswith(WORD_END):
                words.append(word + piece[: -len(WORD_END)])
                word = ""
            else:
                word += piece
        if words or word:
            sentences.append([*words, word] if word else words)
        return " ".join(self._detokenizers[lang].detokenize(sentence) for sentence in sentences)
