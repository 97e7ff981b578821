"""make bench: the engine beside transformers on a random checkpoint of the real shape, in one run, as ratios."""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from safetensors.torch import save_file

from benchmarks import fill, interaction
from benchmarks.interaction import PASSAGE
from xlm_demo.engine import Encoded, Engine
from xlm_demo.engine.forward import last_logits
from xlm_demo.engine.results import START_ID
from xlm_demo.engine.sampling import GREEDY
from xlm_demo.model.checkpoint import load_checkpoint
from xlm_demo.model.weights import hf_key_map
from xlm_demo.model.xlm import XLM, XLMConfig

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "build" / "bench-model"
RESULTS = ROOT / "build" / "bench" / "results.json"
BUNDLED = ROOT / "assets" / "xlm-mini-ende"
REAL = XLMConfig()  # xlm-clm-ende-1024: 1024 dims, 6 layers, 8 heads, 64,699 tokens


def write_checkpoint(folder: Path) -> None:
    """A random-weight checkpoint of the real shape in the hub layout (tied matrix stored once)."""
    torch.manual_seed(0)
    model = XLM(REAL)
    for table in (model.tokens, model.positions, model.langs):  # XLM's embed_init_std: realistic logit scales
        torch.nn.init.normal_(table.weight, std=REAL.dim**-0.5)
    ours = model.state_dict()
    state = {hf: ours[name].contiguous() for hf, name in hf_key_map(REAL).items() if hf != "pred_layer.proj.weight"}
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, folder / "model.safetensors")
    config = {
        "model_type": "xlm", "emb_dim": REAL.dim, "n_layers": REAL.n_layers, "n_heads": REAL.n_heads,
        "vocab_size": REAL.vocab_size, "n_langs": 2, "lang2id": {"de": 0, "en": 1}, "causal": True,
        "use_lang_emb": True, "max_position_embeddings": REAL.max_positions, "layer_norm_eps": 1e-12,
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    # The bundled model's cased English/German BPE, padded to the real vocabulary's size, so that text tokenizes
    # into real words at about the real rate (1.3 positions per word) and the page can be timed on real text.
    vocab = json.loads((BUNDLED / "vocab.json").read_text(encoding="utf-8"))
    vocab.update({f"w{i}</w>": i for i in range(len(vocab), REAL.vocab_size)})
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    shutil.copyfile(BUNDLED / "merges.txt", folder / "merges.txt")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lowercase_and_remove_accent": False}))


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


def reference_model(folder: Path):
    """transformers' XLMWithLMHeadModel on the same weights, with causal attention."""
    from transformers import XLMConfig as HFConfig
    from transformers import XLMWithLMHeadModel

    config = HFConfig.from_pretrained(folder)
    config.causal = True
    return XLMWithLMHeadModel.from_pretrained(folder, config=config, dtype=torch.float32).eval()


def prompt_ids(length: int) -> list[int]:
    generator = torch.Generator().manual_seed(length)
    return [START_ID, *torch.randint(14, REAL.vocab_size, (length - 1,), generator=generator).tolist()]


def bench_predict(engine: Engine, reference, repeats: int, threads: int) -> list[dict]:
    """Next-token distribution: our last-position logits against transformers' full forward."""
    return [predict_row(engine, reference, length, repeats, threads) for length in (8, 32, 128)]


def predict_row(engine: Engine, reference, length: int, repeats: int, threads: int) -> dict:
    """One prompt length's timings."""
    ids = prompt_ids(length)
    encoded = Encoded(ids, "en", truncated=False)
    tensor, langs = torch.tensor([ids]), torch.ones(1, length, dtype=torch.long)

    def theirs(keep: int = 0):
        with torch.inference_mode():
            return reference(input_ids=tensor, langs=langs, logits_to_keep=keep).logits[0, -1].softmax(-1)

    ours = median_seconds(lambda: engine.predict_encoded(encoded, top_k=10), repeats)
    with torch_threads(threads):
        full = median_seconds(theirs, repeats)
        last_only = median_seconds(lambda: theirs(1), repeats)
    return {"tokens": length, "ours_ms": ours * 1e3, "transformers_ms": full * 1e3,
            "transformers_last_only_ms": last_only * 1e3, "speedup": full / ours}  # fmt: skip


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


def int8_max_difference(exact: Engine, quantized: Engine) -> float:
    """Largest next-token probability difference between float32 and int8 over fixed prompts."""
    worst = 0.0
    for length in (4, 8, 16, 32, 64, 128):
        encoded = Encoded(prompt_ids(length), "en", truncated=False)
        with torch.inference_mode():
            a = last_logits(exact.model, exact.lang2id, [encoded])[0].softmax(-1)
            b = last_logits(quantized.model, quantized.lang2id, [encoded])[0].softmax(-1)
        worst = max(worst, float((a - b).abs().max()))
    return worst


def cpu_ms_per_call(run: Callable[[], object], calls: int = 20, pause: float = 0.05) -> float:
    """This process's CPU time per call, pauses between calls included (where idle threads spin)."""
    run()
    time.sleep(0.3)
    start = time.process_time()
    for _ in range(calls):
        run()
        time.sleep(pause)
    time.sleep(0.3)  # the last call's spinning threads
    return (time.process_time() - start) / calls * 1e3


def bench_thread_setup(folder: Path, repeats: int) -> list[dict]:
    """Each product library and thread setup the engine could run with, and the one it chose here."""
    encoded = Encoded(prompt_ids(8), "en", truncated=False)
    chosen = Engine.load(str(folder), device="cpu").products
    setups = (("torch's own products and threads", "torch", False),
              ("OpenBLAS, torch at 1 thread in the engine's calls", "openblas", False),
              ("OpenBLAS beside torch's own threads", "openblas", True))  # fmt: skip
    rows = []
    for name, products, unscoped in setups:
        engine = Engine.load(str(folder), device="cpu", products=products)
        if unscoped:
            engine.thread_scope = nullcontext

        def predict(engine=engine):
            return engine.predict_encoded(encoded)

        rows.append({"setup": name, "chosen": products == chosen and not unscoped,
                     "predict_ms": median_seconds(predict, repeats) * 1e3, "predict_cpu_ms": cpu_ms_per_call(predict),
                     "decode_ms": decode_seconds_per_token(engine, 16, max(2, repeats // 2)) * 1e3})  # fmt: skip
    return rows


def bench_room(folder: Path, users: int = 16, rounds: int = 3, extra_env: dict[str, str] | None = None) -> dict:
    """16 users asking /predict at once through the API of a server process, against the same requests one by one."""
    from gradio_client import Client

    from benchmarks.server_process import free_port, start_server, stop, wait_until_up

    port, log_path = free_port(), RESULTS.parent / "room-server.log"
    base = f"http://127.0.0.1:{port}/"
    server = start_server(folder, port, log_path, extra_env)
    try:
        wait_until_up(base, server, log_path)
        client = Client(base, verbose=False)
        texts = [" ".join(PASSAGE[i : i + 18]) for i in range(users)]  # about 25 positions each

        def ask(text: str) -> float:
            start = time.perf_counter()
            client.predict(prompt=text, lang="en", top_k=10, api_name="/predict")
            return time.perf_counter() - start

        ask(texts[0])
        start = time.perf_counter()
        for text in texts * rounds:
            ask(text)
        one_by_one = (time.perf_counter() - start) / (users * rounds)
        latencies = []
        start = time.perf_counter()
        with ThreadPoolExecutor(users) as pool:
            for _ in range(rounds):
                latencies += list(pool.map(ask, texts))
        together = (time.perf_counter() - start) / (users * rounds)
    finally:
        stop(server)
    latencies.sort()
    return {"users": users, "sequential_req_per_s": 1 / one_by_one, "concurrent_req_per_s": 1 / together,
            "throughput_gain": one_by_one / together, "p50_ms": latencies[len(latencies) // 2] * 1e3,
            "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1e3}  # fmt: skip


def bench_startup(folder: Path) -> dict:
    """A fresh process: load the real-size checkpoint and print its first distribution; its own peak memory."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "xlm_demo", "predict", "--model", str(folder), "--device", "cpu", "w14"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    _, status, usage = os.wait4(child.pid, 0)  # this child's usage, not the largest of every child so far
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"the start-up run failed with status {status}")
    return {"first_distribution_s": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def bench_fill(rounds: int) -> dict:
    """The fill section, on engines of its own: one without a prefix cache (the CLI's), one with (the page's)."""
    checkpoint = load_checkpoint(str(MODEL_DIR))
    cold = Engine.from_checkpoint(checkpoint, device="cpu", prefix_cache_bytes=0)
    warm = Engine.from_checkpoint(checkpoint, device="cpu", products=cold.products)  # one library for both
    return fill.bench_fill(cold, warm, rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch threads, as on a 2-core Space")
    parser.add_argument("--no-browser", action="store_true", help="time the page's callbacks but not in Chromium")
    parser.add_argument("--only", choices=["fill"], help="run one section alone and print its table")
    args = parser.parse_args()
    if not (MODEL_DIR / "model.safetensors").is_file():
        write_checkpoint(MODEL_DIR)
    if args.only == "fill":
        print(fill.report(bench_fill(args.repeats)))
        return 0
    startup = bench_startup(MODEL_DIR)  # first, while this process holds no model of its own
    engine = Engine.load(str(MODEL_DIR), device="cpu")
    quantized = Engine.load(str(MODEL_DIR), device="cpu", quantize="int8")
    reference = reference_model(MODEL_DIR)

    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "threads": args.threads, "torch": torch.__version__, "products": engine.products}  # fmt: skip
    results["predict"] = bench_predict(engine, reference, args.repeats, args.threads)
    n, r = args.decode_tokens, max(2, args.repeats // 2)
    ours = decode_seconds_per_token(engine, n, r)
    with torch_threads(args.threads):
        ours_int8 = decode_seconds_per_token(quantized, n, r)
        theirs = reference_decode_seconds_per_token(reference, n, r)
        bandwidth = read_bandwidth()
    results["decode"] = {
        "ours_ms": ours * 1e3, "int8_ms": ours_int8 * 1e3, "transformers_ms": theirs * 1e3,
        "bandwidth_gb_s": bandwidth / 1e9, "floor_ms": decode_bytes(REAL, 4) / bandwidth * 1e3,
        "int8_floor_ms": decode_bytes(REAL, 1) / bandwidth * 1e3,
        "ours_vs_floor": ours / (decode_bytes(REAL, 4) / bandwidth), "speedup": theirs / ours,
        "int8_speedup": theirs / ours_int8, "int8_max_prob_diff": int8_max_difference(engine, quantized),
    }  # fmt: skip
    results["thread_setup"] = bench_thread_setup(MODEL_DIR, args.repeats)
    results["room"] = bench_room(MODEL_DIR)
    results["room_one_openblas_thread"] = bench_room(MODEL_DIR, extra_env={"OPENBLAS_NUM_THREADS": "1"})
    results["startup"] = startup
    results["fill"] = bench_fill(args.repeats)
    results["interaction"] = {"server": interaction.bench_server(engine, max(2, args.repeats // 2))}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))  # kept should the browser part fail
    if not args.no_browser:
        log_path = RESULTS.parent / "interaction-server.log"
        results["interaction"]["browser"] = interaction.bench_browser(MODEL_DIR, log_path)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(report(results))
    print()
    print(fill.report(results["fill"]))
    print()
    print(interaction.report(results["interaction"]["server"], results["interaction"].get("browser")))
    return 0


def report(results: dict) -> str:
    """The table of docs/benchmarks.md."""
    d, room, start = results["decode"], results["room"], results["startup"]
    lines = [f"CPU: {results['machine']}, torch {results['torch']}, float32; transformers and int8 on "
             f"{results['threads']} torch threads, this demo's float32 products on {results['products']}", "",
             "| measure | this demo | transformers | ratio |", "|---|---|---|---|"]  # fmt: skip
    for row in results["predict"]:
        lines.append(f"| next-token distribution, {row['tokens']} tokens | {row['ours_ms']:.1f} ms | "
                     f"{row['transformers_ms']:.1f} ms ({row['transformers_last_only_ms']:.1f} ms with "
                     f"logits_to_keep=1) | {row['speedup']:.2f}× faster |")  # fmt: skip
    lines += [
        f"| continuation, per token (cached) | {d['ours_ms']:.1f} ms | {d['transformers_ms']:.1f} ms | "
        f"{d['speedup']:.2f}× faster |",
        f"| continuation, per token, int8 | {d['int8_ms']:.1f} ms | {d['transformers_ms']:.1f} ms (float32) | "
        f"{d['int8_speedup']:.2f}× faster |",
        f"| bandwidth floor per token (float32) | {d['floor_ms']:.1f} ms at {d['bandwidth_gb_s']:.1f} GB/s | | "
        f"ours at {d['ours_vs_floor']:.2f}× the floor |",
        f"| int8: largest probability difference from float32 | {d['int8_max_prob_diff']:.1e} | | |",
        f"| {room['users']} users at once through /predict | {room['concurrent_req_per_s']:.1f} req/s "
        f"(p50 {room['p50_ms']:.0f} ms, p95 {room['p95_ms']:.0f} ms) | {room['sequential_req_per_s']:.1f} req/s "
        f"one by one | {room['throughput_gain']:.2f}× the throughput |",
        f"| start-up to first distribution (CLI process) | {start['first_distribution_s']:.1f} s, "
        f"peak RSS {start['peak_rss_mb']:.0f} MB | | |",
        "",
        "| thread setup | next token, 8 tokens | CPU per request | continuation, per token | 16 users at once |",
        "|---|---|---|---|---|",
    ]
    for row in results["thread_setup"]:
        chosen = " (chosen here)" if row["chosen"] else ""
        lines.append(f"| {row['setup']}{chosen} | {row['predict_ms']:.1f} ms | "
                     f"{row['predict_cpu_ms']:.0f} ms | {row['decode_ms']:.1f} ms | |")  # fmt: skip
    servers = (("OpenBLAS's threads (the default)", "room"), ("OPENBLAS_NUM_THREADS=1", "room_one_openblas_thread"))
    for name, key in servers:
        r = results[key]
        lines.append(f"| server, its choice, {name} | | | | {r['concurrent_req_per_s']:.1f} req/s (one by one "
                     f"{r['sequential_req_per_s']:.1f} req/s, p50 {r['p50_ms']:.0f} ms) |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
