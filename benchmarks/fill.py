"""make bench's fill section (alone: `python -m benchmarks.run --only fill`): a blank in the middle of a 20-word
text filled with the left context's 50 proposals, each scored with the whole text, beside a predict on the same text,
on the real-size random checkpoint. The target: within 3× the predict.

Each round takes another 20 words of the passage and runs the operations in turn, so that a shared machine's drift
weighs on all alike; the ratios are taken round by round, then their median. "cold" is an engine without a prefix
cache, as the CLI runs; "after the page's view" has the text already analysed, as on the page, so that its left
context is in the prefix cache.
"""

from __future__ import annotations

import statistics
import time

from benchmarks.interaction import PASSAGE
from xlm_demo.engine import Engine
from xlm_demo.engine.fill import MASK, PROPOSALS

WORDS, BLANK_AT = 20, 10  # the text's words, and which of them is the blank


def blank_text(round_: int) -> str:
    """20 words of the passage, the 11th a blank."""
    words = PASSAGE[WORDS * round_ : WORDS * (round_ + 1)]
    return " ".join([*words[:BLANK_AT], MASK, *words[BLANK_AT + 1 :]])


def seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def one_round(cold: Engine, warm: Engine, text: str) -> dict[str, float]:
    """Each operation's wall seconds on one text."""
    times = {
        "predict": seconds(lambda: cold.predict(text, "en", top_k=10)),
        "fill_cold": seconds(lambda: cold.fill(text, "en", top_k=10)),
    }
    warm.analyse(warm.encode(text, "en"))  # the page's own view of the text, untimed
    times["fill_after_page"] = seconds(lambda: warm.fill(text, "en", top_k=10))
    return times


def bench_fill(cold: Engine, warm: Engine, rounds: int) -> dict:
    """Median milliseconds of predict and fill, and fill's median ratio to predict."""
    cold.fill(blank_text(rounds), "en")  # untimed: the first calls after loading run slowly
    runs = [one_round(cold, warm, blank_text(r)) for r in range(rounds)]
    example = cold.fill(blank_text(0), "en", top_k=10)
    result = {
        "words": WORDS,
        "tokens": len(example.input_ids),
        "tokens_after_blank": len(example.input_ids) - example.blank - 1,
        "candidates_scored": example.scored,
        "proposals": PROPOSALS,
        "rounds": rounds,
        "products": cold.products,
    }
    for name in runs[0]:
        result[f"{name}_ms"] = round(statistics.median(run[name] for run in runs) * 1e3, 1)
    for name in ("fill_cold", "fill_after_page"):
        result[f"{name}_ratio"] = round(statistics.median(run[name] / run["predict"] for run in runs), 2)
    return result


def report(result: dict) -> str:
    """One table row per fill against the predict."""
    lines = [
        f"fill: a blank in a {result['words']}-word text ({result['tokens']} positions, {result['tokens_after_blank']} "
        f"after the blank), {result['candidates_scored']} candidates scored, median of {result['rounds']} rounds, "
        f"products on {result['products']}",
        "",
        "| operation | median | against predict (target: at most 3×) |",
        "|---|---|---|",
        f"| predict on the text | {result['predict_ms']:.0f} ms | 1× |",
        f"| fill, cold (as the CLI) | {result['fill_cold_ms']:.0f} ms | {result['fill_cold_ratio']:.1f}× |",
        f"| fill after the page's view of the text | {result['fill_after_page_ms']:.0f} ms | "
        f"{result['fill_after_page_ratio']:.1f}× |",
    ]
    return "\n".join(lines)
