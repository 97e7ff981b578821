"""XLM's dictionary and CLM token streams: `</s> sentence </s> sentence </s> ...`, cut into bptt windows."""

from __future__ import annotations

from pathlib import Path

import torch

SPECIALS = ("<s>", "</s>", "<pad>", "<unk>", *(f"<special{i}>" for i in range(10)))  # ids 0-13 in every XLM
EOS, UNK = 1, 3


def dictionary(vocab_file: Path) -> dict[str, int]:
    """XLM's word -> id: the specials, then the fastBPE vocab lines in order at 14 + line index."""
    words = list(SPECIALS)
    for line in vocab_file.read_text(encoding="utf-8").splitlines():
        word = line.split(" ")[0]
        if word and word not in SPECIALS:
            words.append(word)
    return {word: i for i, word in enumerate(words)}


def stream(bpe_file: Path, word2id: dict[str, int]) -> torch.Tensor:
    """All lines of a BPE-split file as one stream: it starts with </s>, and each line ends with one."""
    ids = [EOS]
    for line in bpe_file.read_text(encoding="utf-8").splitlines():
        ids.extend(word2id.get(unit, UNK) for unit in line.split())
        ids.append(EOS)
    return torch.tensor(ids, dtype=torch.long)


def windows(tokens: torch.Tensor, bptt: int, offset: int = 0) -> torch.Tensor:
    """Consecutive (n, bptt + 1) windows: inputs [:, :-1] predict targets [:, 1:], every token predicted once."""
    usable = (tokens.numel() - offset - 1) // bptt
    starts = offset + bptt * torch.arange(usable)  # (n,)
    return tokens[starts[:, None] + torch.arange(bptt + 1)]  # (n, bptt + 1)


class Batches:
    """Endless training batches, half of each language, each language's windows reshuffled every epoch."""

    def __init__(self, streams: dict[int, torch.Tensor], bptt: int, batch_size: int, seed: int):
        if batch_size % len(streams):
            raise ValueError(f"batch size {batch_size} does not split evenly over {len(streams)} languages")
        self.streams, self.bptt, self.per_lang = streams, bptt, batch_size // len(streams)
        self.generator = torch.Generator().manual_seed(seed)
        self.pending = {lang: torch.empty(0, bptt + 1, dtype=torch.long) for lang in streams}
        self.epochs = dict.fromkeys(streams, 0)

    def _take(self, lang: int) -> torch.Tensor:
        while len(self.pending[lang]) < self.per_lang:
            # A fresh random offset each epoch, so window boundaries move between epochs.
            offset = int(torch.randint(self.bptt, (1,), generator=self.generator))
            fresh = windows(self.streams[lang], self.bptt, offset)
            fresh = fresh[torch.randperm(len(fresh), generator=self.generator)]
            self.pending[lang] = torch.cat([self.pending[lang], fresh])
            self.epochs[lang] += 1
        taken, self.pending[lang] = self.pending[lang][: self.per_lang], self.pending[lang][self.per_lang :]
        return taken

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Token windows (B, bptt + 1) and their language ids (B, 1)."""
        tokens = torch.cat([self._take(lang) for lang in self.streams])
        langs = torch.cat([torch.full((self.per_lang, 1), lang) for lang in self.streams])
        return tokens, langs

    def __iter__(self):
        return self
