"""Build assets/xlm-mini-ende from Debian text: `python -m scripts.bundled_model.build [--tiny]`.

Stages whose inputs and settings did not change since the last run are reused (stamps in build/bundled-model/stamps).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from xlm_demo.model.xlm import XLMConfig

from . import card, corpus, evaluate, export, fastbpe, moses, sources, streams, train
from .settings import FULL, LANGS, TINY, Settings

SPLITS = ("train", "heldout")
LANG2ID = {lang: i for i, lang in enumerate(LANGS)}


class Stages:
    """Runs a stage unless its stamp shows it ran with the same settings and nothing before it was rerun."""

    def __init__(self, build_dir: Path):
        self.stamps = build_dir / "stamps"
        self.stamps.mkdir(parents=True, exist_ok=True)
        self.rerun = False

    def needed(self, name: str, inputs: dict) -> bool:
        stamp = self.stamps / f"{name}.json"
        wanted = json.dumps(inputs, sort_keys=True, default=str)
        if not self.rerun and stamp.is_file() and stamp.read_text() == wanted:
            print(f"[{name}] up to date", flush=True)
            return False
        stamp.unlink(missing_ok=True)
        self.rerun = True
        print(f"[{name}] running", flush=True)
        return True

    def done(self, name: str, inputs: dict) -> None:
        (self.stamps / f"{name}.json").write_text(json.dumps(inputs, sort_keys=True, default=str))


def prepare_text(settings: Settings, stages: Stages) -> tuple[dict, dict]:
    """Debian packages -> clean train/held-out paragraphs; their versions and the corpus statistics."""
    root, text = settings.build_dir / "packages", settings.build_dir / "text"
    inputs = {"packages": sources.packages()}
    if stages.needed("fetch", inputs):
        sources.fetch(root)
        stages.done("fetch", inputs)
    inputs = {"sources": [dataclasses.asdict(s) | {"skip": sorted(s.skip)} for s in sources.SOURCES]}
    inputs |= {k: getattr(settings, k) for k in ("seed", "heldout_fraction", "min_words", "max_chars")}
    if stages.needed("corpus", inputs):
        corpus.build(root, text, settings)
        stages.done("corpus", inputs)
    return json.loads((root / "packages.json").read_text()), json.loads((text / "corpus.json").read_text())


def prepare_tokens(settings: Settings, stages: Stages) -> tuple[Path, Path, Path]:
    """Moses tokens, then BPE learnt on both training sets: the tool, the codes and the vocabulary."""
    text, tok, bpe = (settings.build_dir / name for name in ("text", "moses", "bpe"))
    if stages.needed("moses", {}):
        tok.mkdir(exist_ok=True)
        for split in SPLITS:
            for lang in LANGS:
                moses.tokenize_file(text / f"{split}.{lang}", tok / f"{split}.{lang}", lang, settings.threads)
        stages.done("moses", {})
    tool = fastbpe.build_tool(settings.build_dir / "fastBPE")
    codes, vocab = bpe / "codes", bpe / "vocab"
    inputs = {"n_merges": settings.n_merges}
    if stages.needed("bpe", inputs):
        bpe.mkdir(exist_ok=True)
        fastbpe.learn(tool, settings.n_merges, [tok / f"train.{lang}" for lang in LANGS], codes)
        for split in SPLITS:
            for lang in LANGS:
                fastbpe.apply(tool, tok / f"{split}.{lang}", bpe / f"{split}.{lang}", codes)
        fastbpe.vocabulary(tool, [bpe / f"train.{lang}" for lang in LANGS], vocab)
        stages.done("bpe", inputs)
    return tool, codes, vocab


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a minutes-long smoke run exporting into build/ only")
    parser.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    args = parser.parse_args(argv)
    settings = TINY if args.tiny else FULL
    if args.steps:
        settings = settings.replace(steps=args.steps)
    try:
        run(settings)
    except (sources.SourceError, fastbpe.FastBPEError) as error:
        raise SystemExit(f"bundled model: {error}") from None


def run(settings: Settings) -> None:
    started = time.time()
    torch.set_num_threads(settings.threads)
    settings.build_dir.mkdir(parents=True, exist_ok=True)
    stages = Stages(settings.build_dir)
    packages, corpus_stats = prepare_text(settings, stages)
    tool, codes, vocab = prepare_tokens(settings, stages)

    word2id = streams.dictionary(vocab)
    bpe = settings.build_dir / "bpe"
    data = {(split, lang): streams.stream(bpe / f"{split}.{lang}", word2id) for split in SPLITS for lang in LANGS}
    config = XLMConfig(vocab_size=len(word2id), n_langs=len(LANGS), **settings.model_fields())
    checkpoint, curve_path = settings.build_dir / "model.pt", settings.build_dir / "curve.jsonl"
    inputs = {k: v for k, v in dataclasses.asdict(settings).items() if not k.startswith(("final_", "continuation"))}
    if stages.needed("train", inputs):
        t0 = time.time()
        model = train.train(
            config,
            {lang: data["train", lang] for lang in LANGS},
            {lang: data["heldout", lang] for lang in LANGS},
            LANG2ID,
            settings,
            curve_path,
        )
        torch.save({"model": model.state_dict(), "train_seconds": time.time() - t0}, checkpoint)
        stages.done("train", inputs)
    saved = torch.load(checkpoint, weights_only=True)
    model = train.new_model(config, settings.seed)
    model.load_state_dict(saved["model"])

    print("[export]", flush=True)
    export.export(model, word2id, codes, LANG2ID, settings.export_dir)
    exported = evaluate.load_exported(settings.export_dir)
    heldout = {lang: data["heldout", lang] for lang in LANGS}
    record = {
        "packages": packages,
        "corpus": corpus_stats,
        "curve": [json.loads(line) for line in curve_path.read_text().splitlines()],
        "lang2id": LANG2ID,
        "tokens": {f"{split}.{lang}": int(data[split, lang].numel()) for split in SPLITS for lang in LANGS},
        "vocab_size": config.vocab_size,
        "parameters": sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()),
        "file_mb": (settings.export_dir / "model.safetensors").stat().st_size / 1e6,
        "wall_minutes": saved["train_seconds"] / 60,
        "eval_tokens": {
            lang: len(streams.windows(data["heldout", lang], settings.bptt)[: settings.final_eval_windows])
            * settings.bptt
            for lang in LANGS
        },
        "perplexity": evaluate.perplexity_table(exported, heldout, LANG2ID, settings.bptt, settings.final_eval_windows),
        "samples": evaluate.continuations(exported, word2id, LANG2ID, tool, codes, settings.continuation_tokens),
    }
    (settings.build_dir / "metrics.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    card.write(settings.export_dir, settings, record)
    print(json.dumps(record["perplexity"], indent=2))
    for sample in record["samples"]:
        print(f"{sample['lang']}: {sample['text']}")
    print(f"[done] {settings.export_dir} in {(time.time() - started) / 60:.1f} minutes", flush=True)


if __name__ == "__main__":
    main()
