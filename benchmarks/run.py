"""make bench: the engine beside transformers on a random checkpoint of the real shape, in one run, as ratios."""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import torch
from safetensors.torch import save_file

from benchmarks import decode, fill, follow, interaction
from benchmarks.decode import decode_seconds_per_token, median_seconds, prompt_ids, torch_threads
from benchmarks.interaction import PASSAGE
from xlm_demo.engine import Encoded, Engine
from xlm_demo.model.checkpoint import load_checkpoint
from xlm_demo.model.weights import hf_key_map
from xlm_demo.model.xlm import XLM, XLMConfig

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "build" / "bench-model"
RESULTS = ROOT / "build" / "bench" / "results.json"
FOLLOWERS = [0, 20]  # followers while the presenter types and continues, on the real-size checkpoint
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


def reference_model(folder: Path):
    """transformers' XLMWithLMHeadModel on the same weights, with causal attention."""
    from transformers import XLMConfig as HFConfig
    from transformers import XLMWithLMHeadModel

    config = HFConfig.from_pretrained(folder)
    config.causal = True
    return XLMWithLMHeadModel.from_pretrained(folder, config=config, dtype=torch.float32).eval()


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


def bench_decode(args: argparse.Namespace, reference=None) -> dict:
    """The decode section: every precision, transformers and the floor, in turns."""
    reference = reference or reference_model(MODEL_DIR)
    return decode.bench_decode(
        load_checkpoint(str(MODEL_DIR)), reference, args.decode_tokens, args.repeats, args.threads
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch threads, as on a 2-core Space")
    parser.add_argument("--no-browser", action="store_true", help="time the page's callbacks but not in Chromium")
    parser.add_argument(
        "--only",
        choices=["fill", "decode", "continue", "interaction", "follow"],
        help="run one section alone and print its table",
    )
    args = parser.parse_args()
    if not (MODEL_DIR / "model.safetensors").is_file():
        write_checkpoint(MODEL_DIR)
    if args.only == "fill":
        print(fill.report(bench_fill(args.repeats)))
        return 0
    if args.only == "decode":
        print(decode.report(bench_decode(args)))
        return 0
    if args.only == "continue":
        print(interaction.continue_report(MODEL_DIR, RESULTS.parent / "interaction-server.log", args.repeats))
        return 0
    if args.only == "interaction":
        engine = Engine.load(str(MODEL_DIR), device="cpu")
        server = interaction.bench_server(engine, max(2, args.repeats // 2))
        browser = interaction.bench_browser(MODEL_DIR, RESULTS.parent / "interaction-server.log", engine)
        print(interaction.report(server, browser))
        return 0
    if args.only == "follow":
        print(follow.report(follow.measure(MODEL_DIR, FOLLOWERS, seconds=10.0)))
        return 0
    startup = bench_startup(MODEL_DIR)  # first, while this process holds no model of its own
    engine = Engine.load(str(MODEL_DIR), device="cpu")
    reference = reference_model(MODEL_DIR)

    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "threads": args.threads, "torch": torch.__version__, "products": engine.products}  # fmt: skip
    results["predict"] = bench_predict(engine, reference, args.repeats, args.threads)
    results["decode"] = bench_decode(args, reference)
    results["thread_setup"] = bench_thread_setup(MODEL_DIR, args.repeats)
    results["room"] = bench_room(MODEL_DIR)
    results["room_one_openblas_thread"] = bench_room(MODEL_DIR, extra_env={"OPENBLAS_NUM_THREADS": "1"})
    results["startup"] = startup
    results["fill"] = bench_fill(args.repeats)
    results["interaction"] = {"server": interaction.bench_server(engine, max(2, args.repeats // 2))}
    results["follow"] = follow.measure(MODEL_DIR, FOLLOWERS, seconds=10.0)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))  # kept should the browser part fail
    if not args.no_browser:
        log_path = RESULTS.parent / "interaction-server.log"
        results["interaction"]["browser"] = interaction.bench_browser(MODEL_DIR, log_path, engine)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(report(results))
    print()
    print(decode.report(results["decode"]))
    print()
    print(fill.report(results["fill"]))
    print()
    print(interaction.report(results["interaction"]["server"], results["interaction"].get("browser")))
    print()
    print(follow.report(results["follow"]))
    return 0


def report(results: dict) -> str:
    """The table of docs/benchmarks.md."""
    room, start = results["room"], results["startup"]
    lines = [f"CPU: {results['machine']}, torch {results['torch']}, float32; transformers on "
             f"{results['threads']} torch threads, this demo's float32 products on {results['products']}", "",
             "| measure | this demo | transformers | ratio |", "|---|---|---|---|"]  # fmt: skip
    for row in results["predict"]:
        lines.append(f"| next-token distribution, {row['tokens']} tokens | {row['ours_ms']:.1f} ms | "
                     f"{row['transformers_ms']:.1f} ms ({row['transformers_last_only_ms']:.1f} ms with "
                     f"logits_to_keep=1) | {row['speedup']:.2f}× faster |")  # fmt: skip
    lines += [
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
