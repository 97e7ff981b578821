"""The model card (README.md) of the bundled model, written from the build's own records."""

from __future__ import annotations

from pathlib import Path

from .settings import Settings

LANG_NAMES = {"de": "German", "en": "English"}


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write(out: Path, settings: Settings, record: dict) -> None:
    """README.md in out/ from the build record (packages, corpus, curve, evaluation, sizes)."""
    packages, corpus, curve = record["packages"], record["corpus"], record["curve"]
    langs = list(record["lang2id"])
    sources = table(
        ["package", "version", "language", "licence", "train paragraphs", "train MB", "held-out paragraphs"],
        [
            [
                f"`{s['package']}`",
                packages[s["package"]]["version"],
                s["lang"],
                packages[s["package"]]["licence"],
                s.get("train_paragraphs", 0),
                f"{s.get('train_chars', 0) / 1e6:.2f}",
                s.get("heldout_paragraphs", 0),
            ]
            for s in corpus["sources"]
        ],
    )
    tokens = record["tokens"]
    token_rows = [
        [LANG_NAMES[lang], f"{tokens[f'train.{lang}']:,}", f"{tokens[f'heldout.{lang}']:,}"] for lang in langs
    ]
    evals = [e for e in curve if any(k.startswith("heldout_loss_") for k in e)]
    curve_rows = [
        [e["step"], e["train_loss"], *(e[f"heldout_loss_{lang}"] for lang in langs), f"{e['elapsed_s'] / 60:.1f}"]
        for e in evals
    ]
    ppl = record["perplexity"]
    id_effect = "; ".join(
        f"held-out {LANG_NAMES[text]} has perplexity {ppl[text][text]} under the {text} id and "
        f"{ppl[text][other]} under the {other} id"
        for text in langs
        for other in langs
        if other != text
    )
    ppl_rows = [
        [f"{LANG_NAMES[text]} held-out text", *(f"**{ppl[text][i]}**" if i == text else ppl[text][i] for i in langs)]
        for text in langs
    ]
    samples = table(
        ["prompt", "language id", "greedy continuation (up to the first `</s>`)"],
        [
            [f"`{r['prompt']}`", f"{r['lang']} ({record['lang2id'][r['lang']]})", r["text"].replace("|", "\\|")]
            for r in record["samples"]
        ],
    )
    s = settings
    n_tokens_seen = s.steps * s.batch_size * s.bptt
    n_units = record["vocab_size"] - 14
    held_out = " and ".join(f"{n:,} {LANG_NAMES[lang]}" for lang, n in record["eval_tokens"].items())
    held_out += " held-out tokens"
    vocabulary = (
        f"{record['vocab_size']:,} = 14 specials + {n_units:,} BPE units ({s.n_merges:,} fastBPE merges, cased)"
    )
    text = f"""---
language: [de, en]
tags: [xlm, causal-lm, toy-model]
---

# xlm-mini-ende: a small English/German causal XLM that ships with the demo

A stand-in for [`FacebookAI/xlm-clm-ende-1024`](https://huggingface.co/FacebookAI/xlm-clm-ende-1024) (835 MB) for
places without a network: same architecture family (post-LN XLM with learned position and language embeddings,
tied output embeddings with their own bias), the same file layout and the same language ids (**de = 0, en = 1**), but
{record["parameters"] / 1e6:.1f} M parameters instead of 142 M, trained in {record["wall_minutes"]:.0f} minutes
of wall time on two CPU cores. The language id matters to it: {id_effect}. It does not know much
else (see the end of this card).

Load it like any checkpoint: `xlm_demo.model.checkpoint.load_checkpoint("assets/xlm-mini-ende")`.
transformers' `XLMWithLMHeadModel` and `XLMTokenizer` read the folder too (`causal: true` is set).

## Model

| | |
|---|---|
| layers, dim, heads | {s.n_layers}, {s.dim}, {s.n_heads} (FFN {4 * s.dim}, exact GELU, post-LN) |
| positions | {s.max_positions} learned (as the real model, so prompts are truncated the same way) |
| vocabulary | {vocabulary} |
| parameters | {record["parameters"]:,} (tied input/output embeddings) |
| file | `model.safetensors`, float16, {record["file_mb"]:.1f} MB (the demo loads it as float32) |

## Data

Plain text from Debian 12 packages, fetched with `apt-get download` and unpacked (nothing installed).
Paragraphs of HTML pages (outside `<pre>`, navigation and scripts) and fortunes; kept when they have at least
{s.min_words} words, at most {s.max_chars} characters, mostly letters, no URL or code-like characters, and
function words of the expected language; exact duplicates dropped; {s.heldout_fraction:.0%} of *documents* (pages,
fortunes) held out with seed {s.seed}. Fortune files unfit for a talk (ethnic jokes and the like) and ASCII art are
skipped; see `scripts/bundled_model/sources.py`.

{sources}

Tokens (Moses-tokenized with each language's rules, then BPE; each paragraph followed by `</s>`):

{table(["language", "train tokens", "held-out tokens"], token_rows)}

The licences of the text all allow redistribution; should the weights count as a derivative of it, the one licence
every source allows together is GPL-2.0-or-later (the handbook offers GPL-2.0+, the LibreOffice help's MPL-2.0 is
GPL-compatible, the English fortunes are BSD).

## Training

XLM's CLM convention: one stream per language, starting with `</s>`, each paragraph followed by `</s>`; windows of
{s.bptt} tokens (positions 0-{s.bptt - 1}), the stream's language id on every token; every batch has
{s.batch_size // 2} German and {s.batch_size // 2} English windows. Next-token cross-entropy, AdamW (betas 0.9/0.98,
weight decay {s.weight_decay} on matrices), learning rate {s.lr} with {s.warmup_steps} warm-up steps and a cosine to
{s.lr * s.min_lr_ratio:g}, gradient clipping at {s.clip_norm}, no dropout, {s.steps:,} steps =
{n_tokens_seen / 1e6:.1f} M tokens, seed {s.seed}, `torch.set_num_threads({s.threads})`. The model is
`xlm_demo.model.xlm.XLM` itself.

Curve (loss in nats per token; held-out loss on the first {s.eval_windows} held-out windows of each language,
under its own id):

{table(["step", "train loss", *(f"held-out {lang}" for lang in langs), "minutes"], curve_rows)}

## Held-out perplexity under each language id

Next-token perplexity of {held_out}, from the exported float16 file as the demo loads it
(rows: the text's language; columns: the language id given to every token):

{table(["", *(f"under the {lang} id ({record['lang2id'][lang]})" for lang in langs)], ppl_rows)}

Chance is {record["vocab_size"]:,} (the vocabulary size).

## Greedy continuations

After `</s>` and the prompt, {s.continuation_tokens} tokens, greedy:

{samples}

## What it cannot do

- Know things. It has seen {sum(tokens[f"train.{lang}"] for lang in langs) / 1e6:.1f} M tokens of software
  documentation and fortune-cookie quotes, nothing else: no news, no encyclopaedia, no conversation.
- Write long coherent text. After a sentence or two it drifts, loops or falls back on LibreOffice help phrasing.
- Translate. The two languages share a BPE vocabulary but the model never saw a sentence pair.
- Stand in for the real model's numbers: its distributions are flatter and its vocabulary
  ({record["vocab_size"]:,} units) differs from xlm-clm-ende-1024's 64,699, so token ids and probabilities in
  the demo look different.

## Rebuilding

`python -m scripts.bundled_model.build` (needs `apt-get update` done once, g++, and the dev requirements) fetches
the packages, rebuilds every file of this folder and this card, and prints its total time at the end; training takes
{record["wall_minutes"]:.0f} minutes of it on two idle cores. The build's records (corpus statistics, the full curve,
metrics) are in `build/bundled-model/`.
"""
    (out / "README.md").write_text(text, encoding="utf-8")
