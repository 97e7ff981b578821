"""Every knob of the build in one frozen dataclass, with the full run and a minutes-long smoke test."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LANGS = ("de", "en")  # sorted codes, as XLM numbers them: de=0, en=1 like xlm-clm-ende-1024


@dataclass(frozen=True)
class Settings:
    """What to build and how big; the defaults are the shipped model's."""

    build_dir: Path = REPO / "build" / "bundled-model"
    export_dir: Path = REPO / "assets" / "xlm-mini-ende"
    seed: int = 20240  # one seed for the split, the initialisation and the batch order

    # corpus
    heldout_fraction: float = 0.03  # of documents (a page, a fortune), so no held-out paragraph has a sibling in train
    min_words: int = 6  # shorter paragraphs are mostly headings, menu paths and table cells
    max_chars: int = 2000  # longer ones are mostly tables flattened into one line

    # tokens
    n_merges: int = 10000  # fastBPE codes learnt jointly on both languages' training text

    # model: 4 post-LN layers of 256 dims fit 2 CPU cores for the hour the whole build may take
    dim: int = 256
    n_layers: int = 4
    n_heads: int = 8
    max_positions: int = 512  # as xlm-clm-ende-1024, so the demo truncates prompts the same way

    # training (XLM's CLM convention: streams of `</s> sentence </s> sentence ...`, bptt-token windows)
    bptt: int = 128
    batch_size: int = 16  # windows per step, half German, half English
    steps: int = 1600  # ~30 minutes at ~1.15 s a step on 2 idle cores; about one pass over the training tokens
    lr: float = 1e-3
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1  # the cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    threads: int = 2
    log_every: int = 50
    eval_every: int = 250
    eval_windows: int = 48  # held-out windows per language for the curve; the final table uses all of them

    # evaluation of the exported model
    final_eval_windows: int = 400  # per language, bptt tokens each
    continuation_tokens: int = 24

    def replace(self, **changes) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def model_fields(self) -> dict:
        """The XLMConfig fields these settings choose (the vocabulary size comes from the BPE stage)."""
        return {name: getattr(self, name) for name in ("dim", "n_layers", "n_heads", "max_positions")}


FULL = Settings()

# Whole pipeline in a few minutes, for checking the plumbing; exports into build/, never into assets/.
TINY = Settings(
    build_dir=REPO / "build" / "bundled-model-tiny",
    export_dir=REPO / "build" / "bundled-model-tiny" / "export",
    n_merges=2000,
    dim=64,
    n_layers=2,
    n_heads=4,
    bptt=64,
    batch_size=8,
    steps=60,
    warmup_steps=10,
    threads=1,
    log_every=10,
    eval_every=30,
    eval_windows=8,
    final_eval_windows=16,
    continuation_tokens=8,
)
