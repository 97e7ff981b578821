"""python -m benchmarks.products: the model's matrix products at the row counts a room's batches make (1-64 new
tokens), in float32 on each library the engine can use and in the opt-in precisions, in turns, so that other work on
the machine weighs on all alike. Prints ms and GFLOP/s per product and row count, and the fastest float32 way."""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from benchmarks.server_process import ROOT
from xlm_demo.model import blas
from xlm_demo.model.precision import mixed_linear
from xlm_demo.model.xlm import XLMConfig

RESULTS = ROOT / "build" / "bench" / "products.json"
REAL = XLMConfig()
MATRICES = {  # (in, out) of each product of the real model, and how many of it a token runs
    "q, k, v, out (1024 → 1024)": ((REAL.dim, REAL.dim), 4 * REAL.n_layers),
    "lin1 (1024 → 4096)": ((REAL.dim, REAL.ffn_dim), REAL.n_layers),
    "lin2 (4096 → 1024)": ((REAL.ffn_dim, REAL.dim), REAL.n_layers),
    "output projection (1024 → 64,699)": ((REAL.dim, REAL.vocab_size), 1),
}
ROWS = (1, 2, 4, 8, 16, 32, 64)


def ways(weight: torch.Tensor, bias: torch.Tensor) -> dict:
    """Each way to run x @ weight.T + bias: float32 on OpenBLAS (as the engine does) and on torch, and the opt-in
    precisions (bfloat16 weights, torch's dynamic int8)."""
    bf16 = weight.to(torch.bfloat16)
    int8 = torch.ao.nn.quantized.dynamic.Linear(weight.shape[1], weight.shape[0], dtype=torch.qint8)
    int8.set_weight_bias(torch.quantize_per_tensor(weight, weight.abs().max().item() / 127, 0, torch.qint8), bias)
    one_thread = blas.OneTorchThread()

    def openblas(x):
        with one_thread():
            return blas.linear(x, weight, bias)

    return {
        "float32, OpenBLAS": openblas,
        "float32, torch": lambda x: torch.nn.functional.linear(x, weight, bias),
        "bfloat16 weights": lambda x: mixed_linear(x, bf16, bias),
        "int8, dynamic": int8,
    }


def measure(rounds: int) -> dict:
    """Median ms of each way, matrix and row count, in turns round by round."""
    found: dict[str, dict[int, dict[str, list[float]]]] = {}
    with torch.inference_mode():
        for name, ((n_in, n_out), _) in MATRICES.items():
            weight, bias = torch.randn(n_out, n_in) * n_in**-0.5, torch.randn(n_out)
            run = ways(weight, bias)
            found[name] = {rows: {way: [] for way in run} for rows in ROWS}
            for rows in ROWS:
                x = torch.randn(rows, n_in)
                for _ in range(rounds + 1):  # the first round warms caches and thread pools, untimed
                    for way, product in run.items():
                        start = time.perf_counter()
                        product(x)
                        found[name][rows][way].append(time.perf_counter() - start)
    return {name: {rows: {way: statistics.median(times[1:]) * 1e3 for way, times in by_way.items()}
                   for rows, by_way in by_rows.items()} for name, by_rows in found.items()}  # fmt: skip


def report(ms: dict) -> str:
    """One table per matrix: ms and GFLOP/s of each way per row count."""
    lines = []
    for name, by_rows in ms.items():
        (n_in, n_out), _ = MATRICES[name]
        ways_named = list(next(iter(by_rows.values())))
        lines += ["", f"**{name}**", "", "| rows | " + " | ".join(ways_named) + " | fastest float32 |",
                  "|---" * (len(ways_named) + 2) + "|"]  # fmt: skip
        for rows, by_way in by_rows.items():
            cells = [f"{t:.2f} ms, {2 * rows * n_in * n_out / t / 1e6:.0f} GFLOP/s" for t in by_way.values()]
            fastest = min(("float32, OpenBLAS", "float32, torch"), key=by_way.get)
            lines.append(f"| {rows} | " + " | ".join(cells) + f" | {fastest.removeprefix('float32, ')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    ms = measure(args.rounds)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "ms": ms}, indent=1))
    print(report(ms))


if __name__ == "__main__":
    main()
