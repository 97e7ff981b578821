"""python -m benchmarks.lens: the layer-by-layer views beside predict on the real-size random checkpoint, as ratios.

Every round takes a new random text of the given length and runs each operation on it once, in turn, so that a busy
machine slows them alike; medians are reported as wall time and as this process's CPU time (less disturbed by other
processes on a shared machine). "cold" runs on an engine without a prefix cache. The others run on one with a
prefix cache, as the page does: `/lens` after the page's own view of the text (its prefix cached under the text's
id), the section's first view after that (the other id not cached yet: until its charts show, and until its verdict
shows too), and its view again (both ids cached).
"""

import argparse
import json
import statistics
import time

import torch

from benchmarks.run import MODEL_DIR, REAL, write_checkpoint
from xlm_demo.engine import Encoded, Engine
from xlm_demo.engine.results import START_ID
from xlm_demo.inside import lens
from xlm_demo.model.checkpoint import load_checkpoint


def random_text(length: int, seed: int) -> list[int]:
    """`length` ids: the start token, then random vocabulary units."""
    generator = torch.Generator().manual_seed(seed)
    return [START_ID, *torch.randint(14, REAL.vocab_size, (length - 1,), generator=generator).tolist()]


def timed(run) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def timed_views(engine: Engine, encoded: Encoded) -> tuple[tuple[float, float], tuple[float, float]]:
    """Wall and CPU seconds until the section's charts (the first of lens_views), and until its verdict too."""
    wall, cpu = time.perf_counter(), time.process_time()
    views = lens.lens_views(engine, encoded, top_k=10)
    next(views)
    charts = time.perf_counter() - wall, time.process_time() - cpu
    for _ in views:
        pass
    return charts, (time.perf_counter() - wall, time.process_time() - cpu)


def one_round(cold: Engine, warm: Engine, ids: list[int]) -> dict[str, tuple[float, float]]:
    """Each operation's times on one text."""
    encoded, other = Encoded(ids, "en", truncated=False), Encoded(ids, "de", truncated=False)
    times = {
        "predict": timed(lambda: cold.predict_encoded(encoded, top_k=10)),
        "compare": timed(lambda: cold.compare_encoded([encoded, other], top_k=10)),
        "lens_cold": timed(lambda: lens.logit_lens(cold, encoded, top_k=10)),
        "view_cold": timed(lambda: lens.lens_view(cold, encoded, top_k=10)),
    }
    warm.analyse(encoded)  # the page's own view of the text, untimed
    times["lens_after_page"] = timed(lambda: lens.logit_lens(warm, encoded, top_k=10))
    times["charts_first"], times["view_first"] = timed_views(warm, encoded)
    times["view_again"] = timed(lambda: lens.lens_view(warm, encoded, top_k=10))
    return times


def row(cold: Engine, warm: Engine, length: int, rounds: int) -> dict:
    """Median milliseconds of each operation at one text length, and their ratios to predict."""
    runs = [one_round(cold, warm, random_text(length, seed=length * 1000 + r)) for r in range(rounds)]
    result = {"tokens": length}
    for clock, index in (("wall", 0), ("cpu", 1)):
        ms = {name: statistics.median(run[name][index] for run in runs) * 1e3 for name in runs[0]}
        result[clock] = {name: round(value, 1) for name, value in ms.items()}
        result[f"{clock}_ratios"] = {name: round(ms[name] / ms["predict"], 2) for name in ms if name != "predict"}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 32, 128, 512])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    if not (MODEL_DIR / "model.safetensors").is_file():
        write_checkpoint(MODEL_DIR)
    checkpoint = load_checkpoint(str(MODEL_DIR))
    cold = Engine.from_checkpoint(checkpoint, device="cpu", prefix_cache_bytes=0)
    warm = Engine.from_checkpoint(checkpoint, device="cpu")
    row(cold, warm, 16, rounds=3)  # untimed: the first calls after loading run slowly (mapped weights, thread pools)
    for length in args.lengths:
        print(json.dumps(row(cold, warm, length, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
