"""make loadtest: many simulated users on the real server through Gradio's HTTP API; latency, busy answers, memory."""

import argparse
import asyncio
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from benchmarks.run import MODEL_DIR, ROOT, write_checkpoint
from benchmarks.server_process import free_port, start_server, stop, wait_until_up
from xlm_demo.page.guards import CONTINUATION_TIME_LIMIT
from xlm_demo.server import MODEL_CONCURRENCY, QUEUE_SIZE

RESULTS = ROOT / "build" / "loadtest.json"
SERVER_LOG = ROOT / "build" / "loadtest-server.log"
ENDPOINTS = {"predict": 5, "compare": 2, "generate": 3}  # how often a user picks each
PROMPTS = [
    ("The weather in Berlin is", "en"),
    ("Die Katze sitzt auf der", "de"),
    ("Heute ist ein schöner Tag, und wir gehen", "de"),
    ("I think that", "en"),
    ("", "en"),
    ("Guten Morgen! 😀🎉 Wie geht's? 🇩🇪", "de"),
    ("Once upon a time there was a house by the river. " * 100, "en"),  # 5,000 characters: cut to 512 positions
]


@dataclass
class Tally:
    """One endpoint's answers during the measured run."""

    served: int = 0
    busy: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    first_token_seconds: list[float] = field(default_factory=list)
    time_limited: int = 0


@dataclass
class Answer:
    """What one request got: its final data, or a busy answer, or an error."""

    data: list | None = None
    busy: bool = False
    error: str | None = None
    seconds: float = 0.0
    first_seconds: float | None = None


def resident_mb(pid: int) -> float:
    """Resident memory of the server process and all its children, in MB."""
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 1e6


def random_request(rng: random.Random) -> tuple[str, list]:
    """An endpoint and all its arguments (Gradio's HTTP API fills in no defaults), in the order the API lists them."""
    name = rng.choices(list(ENDPOINTS), weights=list(ENDPOINTS.values()))[0]
    prompt, lang = rng.choice(PROMPTS)
    literal_specials = False
    if name == "predict":
        return name, [prompt, lang, rng.choice([5, 10, 50]), literal_specials]
    if name == "compare":
        return name, [prompt, 10, literal_specials]
    temperature, continue_lang = rng.choice([0.0, 0.8]), rng.choice(["", "de", "en"])  # "": the text's id
    sampling = [temperature, 0, rng.choice([1.0, 0.9]), rng.randrange(1000)]
    return name, [prompt, lang, rng.choice([8, 16, 32]), *sampling, continue_lang, literal_specials]


async def call(client: httpx.AsyncClient, base: str, name: str, data: list) -> Answer:
    """POST /gradio_api/call/<name>, then read its server-sent events to the end."""
    start = time.perf_counter()
    joined = await client.post(f"{base}gradio_api/call/{name}", json={"data": data})
    if joined.status_code == 503:  # the queue is full: Gradio answers at once
        return Answer(busy=True, seconds=time.perf_counter() - start)
    if joined.status_code != 200:
        return Answer(error=f"HTTP {joined.status_code}: {joined.text[:200]}")
    answer, event = Answer(), None
    async with client.stream("GET", f"{base}gradio_api/call/{name}/{joined.json()['event_id']}") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event in ("generating", "complete", "error"):
                payload = json.loads(line.removeprefix("data: "))
                if answer.first_seconds is None:
                    answer.first_seconds = time.perf_counter() - start
                if event == "error":
                    answer.error = str(payload)[:200]
                else:
                    answer.data = payload
                if event != "generating":
                    break
    answer.seconds = time.perf_counter() - start
    if answer.data is None and answer.error is None:
        answer.error = "the event stream ended without a result"
    return answer


def record(tally: Tally, answer: Answer, name: str, data: list) -> None:
    """Count one answer in its endpoint's tally."""
    if answer.busy:
        tally.busy += 1
    elif answer.error is not None:
        tally.errors.append(answer.error)
    else:
        tally.served += 1
        tally.seconds.append(answer.seconds)
        if name == "generate":  # its first streamed update carries the first token
            tally.first_token_seconds.append(answer.first_seconds)
            tally.time_limited += len(answer.data[0]["new_ids"]) < data[2]  # cut at the time limit


async def user(client: httpx.AsyncClient, base: str, until: float, tallies: dict[str, Tally], seed: int) -> None:
    """One visitor: a request, a short think, again, until the run ends."""
    rng = random.Random(seed)
    while time.monotonic() < until:
        name, data = random_request(rng)
        try:
            answer = await call(client, base, name, data)
        except httpx.HTTPError as error:
            answer = Answer(error=f"{type(error).__name__}: {error}"[:200])
        record(tallies[name], answer, name, data)
        await asyncio.sleep(rng.uniform(0.2, 1.5))


async def longest_wait_line(client: httpx.AsyncClient, base: str, until: float) -> int:
    """The most requests the server's queue held at once, waiting for a worker, sampled every second."""
    longest = 0
    while time.monotonic() < until:
        longest = max(longest, (await client.get(f"{base}gradio_api/queue/status")).json()["queue_size"])
        await asyncio.sleep(1)
    return longest


async def load(base: str, users: int, seconds: float, seed: int) -> tuple[dict[str, Tally], int]:
    """`users` visitors for `seconds` (requests under way at the end finish and count), and the longest queue."""
    tallies = {name: Tally() for name in ENDPOINTS}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)  # no reuse of a connection mid-close
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(600, connect=10)) as client:
        until = time.monotonic() + seconds
        visitors = asyncio.gather(*(user(client, base, until, tallies, seed + i) for i in range(users)))
        longest, _ = await asyncio.gather(longest_wait_line(client, base, until), visitors)
    return tallies, longest


def percentile_ms(seconds: list[float], q: float) -> float | None:
    """The nearest-rank percentile, in milliseconds."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1e3


def summary(tally: Tally, wall: float) -> dict:
    """An endpoint's numbers for the table and the JSON."""
    row = {"served": tally.served, "per_s": tally.served / wall, "busy": tally.busy, "errors": len(tally.errors),
           "p50_ms": percentile_ms(tally.seconds, 0.5), "p95_ms": percentile_ms(tally.seconds, 0.95)}  # fmt: skip
    if tally.first_token_seconds:
        row |= {"first_token_p50_ms": percentile_ms(tally.first_token_seconds, 0.5),
                "first_token_p95_ms": percentile_ms(tally.first_token_seconds, 0.95),
                "time_limited": tally.time_limited}  # fmt: skip
    return row


def table(results: dict) -> str:
    """The numbers as a Markdown table and a memory line."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f} ms"

    lines = ["| endpoint | served | per s | busy | errors | p50 | p95 | first token p50 / p95 |", "|---" * 8 + "|"]
    for name, row in results["endpoints"].items():
        first = f"{ms(row['first_token_p50_ms'])} / {ms(row['first_token_p95_ms'])}" if "time_limited" in row else ""
        lines.append(f"| {name} | {row['served']} | {row['per_s']:.2f} | {row['busy']} | {row['errors']} | "
                     f"{ms(row['p50_ms'])} | {ms(row['p95_ms'])} | {first} |")  # fmt: skip
    memory = results["resident_mb"]
    lines += ["", f"{results['users']} users, {results['wall_s']:.0f} s, at most {results['longest_queue']} requests "
              f"waiting (room for {results['server']['queue_size']}); server resident memory "
              f"{memory['after_warmup']:.0f} MB after warm-up, {memory['after_run']:.0f} MB after the run "
              f"({memory['growth']:+.1%})"]  # fmt: skip
    return "\n".join(lines)


def failures(results: dict) -> list[str]:
    """Why the run fails: any error other than a busy answer, or memory grown more than 10% since warm-up."""
    reasons = [f"{name}: {row['errors']} errors" for name, row in results["endpoints"].items() if row["errors"]]
    if results["resident_mb"]["growth"] > 0.10:
        reasons.append(f"resident memory grew {results['resident_mb']['growth']:.1%} after warm-up")
    return reasons


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of measured load")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of the same load before measuring")
    parser.add_argument("--model", type=Path, default=None, help="default: the real-size random checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    model = args.model or MODEL_DIR
    if args.model is None and not (MODEL_DIR / "model.safetensors").is_file():
        write_checkpoint(MODEL_DIR)
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    server = start_server(model, port, SERVER_LOG)
    try:
        wait_until_up(base, server, SERVER_LOG)
        asyncio.run(load(base, args.users, args.warmup, seed=args.seed + 10_000))
        warm = resident_mb(server.pid)
        start = time.monotonic()
        tallies, longest_queue = asyncio.run(load(base, args.users, args.duration, seed=args.seed))
        wall = time.monotonic() - start
        after = resident_mb(server.pid)
    finally:
        stop(server)
    results = {
        "model": str(model), "users": args.users, "duration_s": args.duration, "warmup_s": args.warmup,
        "wall_s": wall, "longest_queue": longest_queue,
        "server": {"queue_size": QUEUE_SIZE, "model_concurrency": MODEL_CONCURRENCY,
                   "continuation_time_limit_s": CONTINUATION_TIME_LIMIT},
        "endpoints": {name: summary(tally, wall) for name, tally in tallies.items()},
        "resident_mb": {"after_warmup": warm, "after_run": after, "growth": after / warm - 1},
        "error_samples": sorted({error for tally in tallies.values() for error in tally.errors})[:10],
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(table(results))
    for reason in failures(results):
        print(f"FAIL: {reason}", file=sys.stderr)
    return 1 if failures(results) else 0


if __name__ == "__main__":
    sys.exit(main())
