"""python -m benchmarks.lens: the layer-by-layer views beside predict on the real-size random checkpoint, as ratios.

Each round runs every operation once, in turn, so that a busy machine slows them alike; the medians are reported as
wall time and as this process's CPU time (less disturbed by other processes on a shared machine).
"""

import argparse
import json
import statistics
import time

from benchmarks.run import MODEL_DIR, prompt_ids, write_checkpoint
from xlm_demo import lens
from xlm_demo.engine import Encoded, Engine


def timed(run) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def row(engine: Engine, length: int, rounds: int) -> dict:
    """Median milliseconds of each operation on one prompt length, and the ratios the README quotes."""
    ids = prompt_ids(length)
    encoded, other = Encoded(ids, "en", truncated=False), Encoded(ids, "de", truncated=False)
    operations = {
        "predict": lambda: engine.predict_encoded(encoded, top_k=10),
        "lens": lambda: lens.logit_lens(engine, encoded, top_k=10),
        "compare": lambda: engine.compare_encoded([encoded, other], top_k=10),
        "inside": lambda: lens.inside(engine, encoded, top_k=10),
        "analyse": lambda: engine.analyse(encoded, top_k=10),
        "verdict": lambda: lens.verdict(engine, encoded),
    }
    times = {name: [] for name in operations}
    for _ in range(rounds + 1):  # the first round warms up
        for name, run in operations.items():
            times[name].append(timed(run))
    result = {"tokens": length}
    for clock, index in (("wall", 0), ("cpu", 1)):
        ms = {name: statistics.median(t[index] for t in runs[1:]) * 1e3 for name, runs in times.items()}
        result[clock] = {name: round(value, 1) for name, value in ms.items()}
        result[f"{clock}_ratios"] = {
            "lens/predict": round(ms["lens"] / ms["predict"], 2),
            "inside/predict": round(ms["inside"] / ms["predict"], 2),
            "inside/compare": round(ms["inside"] / ms["compare"], 2),
            "verdict/analyse": round(ms["verdict"] / ms["analyse"], 2),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 32, 128, 512])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    if not (MODEL_DIR / "model.safetensors").is_file():
        write_checkpoint(MODEL_DIR)
    engine = Engine.load(str(MODEL_DIR), device="cpu")
    for length in args.lengths:
        print(json.dumps(row(engine, length, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
