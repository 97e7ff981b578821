"""python -m benchmarks.inside: the attention and attribution views beside predict, on the real-size random checkpoint.

The issue's targets, for a 32-token text: attention at most 1.5x predict, gradient x input at most 4x predict,
integrated gradients with 16 steps under 1.5 s. Medians; build/bench/inside.json keeps every number.
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from benchmarks.run import MODEL_DIR, RESULTS, prompt_ids, write_checkpoint
from xlm_demo.engine import Encoded, Engine
from xlm_demo.inside.attention import attention, attention_by_lang
from xlm_demo.inside.attribution import attribute


def measure(engine: Engine, length: int, repeats: int) -> dict:
    """Milliseconds for each view of one text of `length` positions, start token included, beside predict.

    The views take turns within each round, so a shared machine's load, which drifts, weighs on all of them alike;
    ratios to predict are taken round by round, then their median.
    """
    encoded = Encoded(prompt_ids(length), "en", truncated=False)
    runs = {
        "predict": lambda: engine.predict_encoded(encoded, top_k=10),
        "attention": lambda: attention(engine, encoded),
        "attention_both_ids": lambda: attention_by_lang(engine, encoded),
        "grad_x_input": lambda: attribute(engine, encoded),
        "integrated_gradients_16": lambda: attribute(engine, encoded, method="integrated_gradients", steps=16),
    }
    times = {name: [] for name in runs}
    for round_ in range(repeats + 1):  # the first round warms up
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if round_:
                times[name].append(time.perf_counter() - start)
    row = {"tokens": length}
    for name, seconds in times.items():
        row[f"{name}_ms"] = statistics.median(seconds) * 1e3
        row[f"{name}_min_ms"] = min(seconds) * 1e3
    for name in ("attention", "grad_x_input"):
        row[f"{name}_vs_predict"] = statistics.median(a / p for a, p in zip(times[name], times["predict"], strict=True))
    row["completeness_error_16"] = attribute(
        engine, encoded, method="integrated_gradients", steps=16
    ).completeness_error
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--model", type=Path, default=MODEL_DIR, help="written there first if absent")
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--products", default="auto", choices=["auto", "openblas", "torch"], help="as Engine.load")
    args = parser.parse_args()
    if not (args.model / "model.safetensors").exists():
        write_checkpoint(args.model)
    engine = Engine.load(str(args.model), device="cpu", products=args.products)
    rows = [measure(engine, length, args.repeats) for length in args.lengths]
    for row in rows:
        print(
            f"{row['tokens']:>4} tokens: predict {row['predict_ms']:.1f} ms · attention {row['attention_ms']:.1f} ms "
            f"({row['attention_vs_predict']:.2f}x) · both ids {row['attention_both_ids_ms']:.1f} ms · "
            f"gradient x input {row['grad_x_input_ms']:.1f} ms ({row['grad_x_input_vs_predict']:.2f}x) · "
            f"integrated gradients 16 steps {row['integrated_gradients_16_ms']:.0f} ms "
            f"(fastest {row['integrated_gradients_16_min_ms']:.0f} ms, completeness error "
            f"{row['completeness_error_16']:.2%}) · {engine.products} products"
        )
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "products": engine.products,
        "load_average": os.getloadavg(),
    }
    path = RESULTS.parent / "inside.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine, "repeats": args.repeats, "rows": rows}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
