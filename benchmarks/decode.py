"""make bench's decode section: a continued token's time in each precision, beside the memory-bandwidth floor and
transformers, each precision's largest probability difference from float32, and where a float32 token's time goes.

The precisions are timed in turns, round by round, so that a burst of other work on a shared machine slows all alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from xlm_demo.engine import Encoded, Engine, scoring, sessions
from xlm_demo.engine.forward import last_logits
from xlm_demo.engine.results import START_ID
from xlm_demo.engine.sampling import GREEDY
from xlm_demo.model.checkpoint import Checkpoint
from xlm_demo.model.xlm import Linear, Packed, XLMConfig

# Each precision's engine options and the bytes it reads per weight of the linear layers.
PRECISIONS = {
    "float32": ({}, 4),
    "bfloat16": ({"dtype": "bfloat16"}, 2),
    "int8, dynamic (--quantize int8)": ({"quantize": "int8"}, 1),
    "int8 weights per channel, bfloat16 products": ({"quantize": "int8-weights"}, 1),
}
PROMPT_LENGTHS = (4, 8, 16, 32, 64, 128)  # the reference prompts of the probability differences
# Between two timings: the last one's idle threads (torch's OpenMP pool, OpenBLAS's) stop spinning, so that they do
# not take the cores from the next one's.
SETTLE_S = 0.5


def prompt_ids(length: int) -> list[int]:
    generator = torch.Generator().manual_seed(length)
    return [START_ID, *torch.randint(14, 64699, (length - 1,), generator=generator).tolist()]


def median_seconds(run: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of `run` over `repeats` calls, after `warmup` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextmanager
def torch_threads(n: int):
    """torch's own pool at n threads, for transformers and int8; our float32 products run on OpenBLAS beside 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def decode_seconds_per_token(engine: Engine, n_tokens: int, repeats: int) -> float:
    """Our cached greedy continuation of a 16-token prompt, per new token (prefill excluded)."""
    encoded = Encoded(prompt_ids(16), "en", truncated=False)

    def run(n: int):
        for _ in engine.generate(encoded, n, GREEDY, top_k=1):
            pass

    return (median_seconds(lambda: run(n_tokens + 1), repeats) - median_seconds(lambda: run(1), repeats)) / n_tokens


def reference_decode_seconds_per_token(reference, n_tokens: int, repeats: int) -> float:
    """transformers' cached greedy decoding, fed the chosen tokens back (its own loop, not generate())."""
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    def run(n: int):
        ids = torch.tensor([prompt_ids(16)])
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        with torch.inference_mode():
            for _ in range(n):
                logits = reference(input_ids=ids, langs=torch.ones_like(ids), cache=cache).logits[0, -1]
                ids = torch.cat([ids, logits.argmax().view(1, 1)], dim=1)

    return (median_seconds(lambda: run(n_tokens + 1), repeats) - median_seconds(lambda: run(1), repeats)) / n_tokens


def read_bandwidth(n_bytes: int = 1 << 30, repeats: int = 5) -> float:
    """Bytes per second a sum over a large float32 tensor reads (the memory-bandwidth floor's measure)."""
    data = torch.ones(n_bytes // 4)
    return n_bytes / median_seconds(data.sum, repeats)


def decode_bytes(config: XLMConfig, bytes_per_weight: float) -> float:
    """Weight bytes one decode step must read: every linear layer and the output projection."""
    per_layer = 4 * config.dim * config.dim + 2 * config.dim * config.ffn_dim
    return (config.n_layers * per_layer + config.vocab_size * config.dim) * bytes_per_weight


def max_probability_difference(exact: Engine, other: Engine) -> float:
    """Largest next-token probability difference between two engines over the reference prompts."""
    worst = 0.0
    for length in PROMPT_LENGTHS:
        encoded = Encoded(prompt_ids(length), "en", truncated=False)
        with torch.inference_mode():
            a = last_logits(exact.model, exact.lang2id, [encoded])[0].softmax(-1)
            b = last_logits(other.model, other.lang2id, [encoded])[0].softmax(-1)
        worst = max(worst, float((a - b).abs().max()))
    return worst


def bench_decode(checkpoint: Checkpoint, reference, n_tokens: int, rounds: int, threads: int) -> dict:
    """Per token in each precision and in transformers, in turns; the floor; the float32 token's phases."""
    engines = {name: Engine.from_checkpoint(checkpoint, device="cpu", **options)
               for name, (options, _) in PRECISIONS.items()}  # fmt: skip
    exact = engines["float32"]
    times: dict[str, list[float]] = {name: [] for name in [*engines, "transformers"]}
    with torch_threads(threads):
        for _ in range(rounds):
            for name, engine in engines.items():
                time.sleep(SETTLE_S)
                times[name].append(decode_seconds_per_token(engine, n_tokens, 1))
            time.sleep(SETTLE_S)
            times["transformers"].append(reference_decode_seconds_per_token(reference, n_tokens, 1))
        bandwidth = read_bandwidth()
    per_token = {name: statistics.median(values) for name, values in times.items()}
    config = exact.model.config
    rows = {
        name: {"ms": per_token[name] * 1e3, "vs_float32": per_token[name] / per_token["float32"],
               "floor_ms": decode_bytes(config, size) / bandwidth * 1e3,
               "vs_floor": per_token[name] / (decode_bytes(config, size) / bandwidth),
               "max_prob_diff": max_probability_difference(exact, engines[name])}
        for name, (_, size) in PRECISIONS.items()
    }  # fmt: skip
    return {"products": exact.products, "bandwidth_gb_s": bandwidth / 1e9, "rounds": rounds,
            "transformers_ms": per_token["transformers"] * 1e3, "precisions": rows,
            "float32_phases": phases(exact, n_tokens, rounds)}  # fmt: skip


def phases(engine: Engine, n_tokens: int, rounds: int) -> dict[str, float]:
    """Milliseconds per continued float32 token in each part of a step: the median round's."""
    model = engine.model
    parts = {
        "the blocks": (model, "forward_packed"),
        "every matrix product": (Linear, "forward"),
        "output projection": (model.proj, "forward"),  # counted in the products too
        "attention over the cache": (Packed, "attend"),
        "the chosen token's score (vocabulary passes)": (sessions, "token_scores"),
        "the next distribution and choice (vocabulary passes)": (scoring, "summarise"),
    }
    encoded = Encoded(prompt_ids(16), "en", truncated=False)
    measured = []
    for _ in range(rounds):
        time.sleep(SETTLE_S)
        with clocked(parts) as spent:
            start = time.perf_counter()
            for _ in engine.generate(encoded, n_tokens, GREEDY, top_k=1):
                pass
            spent["total"] = time.perf_counter() - start
        measured.append({name: seconds / n_tokens * 1e3 for name, seconds in spent.items()})
    row = sorted(measured, key=lambda values: values["total"])[len(measured) // 2]
    products, blocks, projection = row.pop("every matrix product"), row.pop("the blocks"), row["output projection"]
    named = ("the chosen token's score (vocabulary passes)", "the next distribution and choice (vocabulary passes)")
    return {
        "total": row["total"],
        "blocks' matrix products": products - projection,
        "output projection": projection,
        "attention over the cache": row["attention over the cache"],
        "the blocks' other work (layer norms, GELU, adds, Python)": blocks - (products - projection)
        - row["attention over the cache"],
        **{name: row[name] for name in named},
        "the rest (scheduler, sessions, prefix cache, Python)": row["total"] - blocks - projection
        - sum(row[name] for name in named),
        "everything outside the matrix products": row["total"] - products,
    }  # fmt: skip


@contextmanager
def clocked(parts: dict[str, tuple[object, str]]) -> Iterator[dict[str, float]]:
    """Seconds spent in each named (owner, attribute) callable while the block runs; the callables restored after."""
    spent = dict.fromkeys(parts, 0.0)
    saved = {name: (owner, attribute, vars(owner).get(attribute)) for name, (owner, attribute) in parts.items()}
    for name, (owner, attribute) in parts.items():
        original = getattr(owner, attribute)

        def timed(*args, _original=original, _name=name, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_name] += time.perf_counter() - start

        setattr(owner, attribute, timed)
    try:
        yield spent
    finally:
        for owner, attribute, before in saved.values():
            if before is None:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, before)


def report(decode: dict) -> str:
    """The decode table of docs/benchmarks.md."""
    lines = [f"Per continued token, medians of {decode['rounds']} rounds in turns; float32 products on "
             f"{decode['products']}; memory read at {decode['bandwidth_gb_s']:.1f} GB/s", "",
             "| precision | per token | against float32 | bandwidth floor | against its floor | "
             "largest probability difference from float32 |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, row in decode["precisions"].items():
        lines.append(f"| {name} | {row['ms']:.1f} ms | {row['vs_float32']:.2f}× | {row['floor_ms']:.1f} ms | "
                     f"{row['vs_floor']:.2f}× | {row['max_prob_diff']:.1e} |")  # fmt: skip
    lines.append(f"| transformers, float32 | {decode['transformers_ms']:.1f} ms | "
                 f"{decode['transformers_ms'] / decode['precisions']['float32']['ms']:.2f}× | | | |")  # fmt: skip
    lines += ["", "| where a float32 token's time goes | ms |", "|---|---|"]
    lines += [f"| {name} | {ms:.2f} |" for name, ms in decode["float32_phases"].items()]
    return "\n".join(lines)
