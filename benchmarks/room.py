"""make room: a talk's audience on the page. N members, each its own session, type a word a second through the
page's own prompt-change event (queue/join, then the SSE stream, as the browser sends them); some press Step or
Continue. Per N: keystroke p50 and p95, answered per second, errors, server CPU and memory; then the server's CPU per
`/predict`."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from benchmarks.server_process import ROOT, free_port, start_server, stop, wait_until_up

RESULTS = ROOT / "build" / "room.json"
SERVER_LOG = ROOT / "build" / "room-server.log"
# The words members type, a word about every second.
# fmt: off
WORDS = [
    "the", "weather", "in", "Berlin", "is", "cold", "today", "and", "people", "walk", "along", "the", "river", "to",
    "the", "old", "market", "where", "they", "buy", "bread", "and", "cheese", "before", "the", "long", "winter",
    "evening", "begins", "with", "music", "and", "stories", "told", "by", "the", "fire",
]
# fmt: on
SETTINGS = ["en", 10, False, 1.0, 0, 1.0, 0, ""]  # lang, top_k, sample, temperature, top-k, top-p, seed, continue_lang
HELD = [None, None]  # the session's state and whether its inspector is open: the server holds their values
ROOM = None  # the code of the room the session shares (a state too), last among a page event's inputs
STEP_EVERY, CONTINUE_EVERY = 10, 25  # of a member's actions: a Step, a Continue of CONTINUE_TOKENS
CONTINUE_TOKENS = 8


@dataclass
class Tally:
    """What the members saw during the measured part of one run."""

    keystrokes: list[float] = field(default_factory=list)  # seconds from the key to the answer
    steps: list[float] = field(default_factory=list)
    continues: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last_seen: dict[int, tuple[str, list]] = field(default_factory=dict)  # member -> (text, outputs) after its last key


@dataclass(frozen=True)
class Events:
    """The fn_index of the page's events a member triggers, found in /config by elem_id and trigger."""

    keystroke: tuple[int, int]  # (fn_index, trigger_id)
    step: tuple[int, int]
    go_on: tuple[int, int]

    @classmethod
    def from_config(cls, config: dict) -> Events:
        ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}

        def find(elem_id: str, trigger: str) -> tuple[int, int]:
            for index, dep in enumerate(config["dependencies"]):
                if not dep.get("backend_fn", True):
                    continue  # the page's JavaScript alone, run in the browser on the same trigger
                for target, event in dep["targets"]:
                    if ids.get(target) == elem_id and event == trigger:
                        return dep.get("id", index), target
            raise LookupError(f"no {trigger} event on #{elem_id}")

        return cls(find("prompt", "change"), find("step", "click"), find("continue", "click"))


async def send(
    client: httpx.AsyncClient, base: str, session: str, event: tuple[int, int], data: list
) -> tuple[str | None, list | None]:
    """One event as the browser sends it: join the queue, then read the session's stream to the event's end; the
    error the member would see (None for none) and the event's outputs."""
    fn_index, trigger = event
    body = {"data": data, "event_data": None, "fn_index": fn_index, "trigger_id": trigger, "session_hash": session}
    joined = await client.post(f"{base}gradio_api/queue/join", json=body)
    if joined.status_code != 200:
        return f"HTTP {joined.status_code}: {joined.text[:120]}", None
    event_id = joined.json()["event_id"]
    async with client.stream("GET", f"{base}gradio_api/queue/data", params={"session_hash": session}) as stream:
        async for line in stream.aiter_lines():
            if not line.startswith("data: "):
                continue
            message = json.loads(line.removeprefix("data: "))
            if message.get("event_id") != event_id or message.get("msg") != "process_completed":
                continue
            if not message.get("success"):
                return str(message.get("output", {}).get("error") or message)[:120], None
            return None, message["output"]["data"]
    return "the stream ended before the event completed", None


async def member(client, base: str, events: Events, index: int, start_at: float, until: float, tally: Tally) -> None:
    """One person: types a word about every second at the end of their own text; now and then Step or Continue."""
    rng, session = random.Random(index), uuid.uuid4().hex
    text, actions = f"Member {index} says that", 0
    await asyncio.sleep(rng.uniform(0, 1.0))
    while time.monotonic() < until:
        actions += 1
        if actions % CONTINUE_EVERY == 0:
            kind, event, data = tally.continues, events.go_on, [text, *SETTINGS, *HELD, CONTINUE_TOKENS, ROOM]
        elif actions % STEP_EVERY == 0:
            kind, event, data = tally.steps, events.step, [text, *SETTINGS, *HELD, ROOM]
        else:
            text += " " + rng.choice(WORDS)
            kind, event, data = tally.keystrokes, events.keystroke, [text, *SETTINGS, *HELD, ROOM]
        began = time.monotonic()
        try:
            error, outputs = await send(client, base, session, event, data)
        except httpx.HTTPError as failure:
            error, outputs = f"{type(failure).__name__}: {failure}"[:120], None
        if kind is tally.keystrokes and outputs is not None:
            tally.last_seen[index] = (text, outputs)
        if began >= start_at:  # the first seconds warm the server up and are not counted
            if error is None:
                kind.append(time.monotonic() - began)
            else:
                tally.errors.append(error)
        await asyncio.sleep(max(0.0, rng.uniform(0.5, 1.5) - (time.monotonic() - began)))


def percentile_ms(values: list[float], q: float) -> float | None:
    """The q-quantile of durations in seconds, in ms (the nearest rank); None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


async def run_room(base: str, events: Events, members: int, seconds: float, warmup: float) -> Tally:
    """Every member at once for `warmup` + `seconds`, counted after the warm-up."""
    tally = Tally()
    limits = httpx.Limits(max_connections=2 * members + 10, max_keepalive_connections=2 * members + 10)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        now = time.monotonic()
        await asyncio.gather(
            *(member(client, base, events, i, now + warmup, now + warmup + seconds, tally) for i in range(members))
        )
    return tally


def summary(members: int, seconds: float, tally: Tally, cpu: float, client_cpu: float, rss_mb: float) -> dict:
    """One row of the table."""
    return {
        "members": members,
        "keystrokes_per_s": len(tally.keystrokes) / seconds,
        "keystroke_p50_ms": percentile_ms(tally.keystrokes, 0.50),
        "keystroke_p95_ms": percentile_ms(tally.keystrokes, 0.95),
        "step_p95_ms": percentile_ms(tally.steps, 0.95),
        "continue_p95_ms": percentile_ms(tally.continues, 0.95),
        "errors": len(tally.errors),
        "error_examples": sorted(set(tally.errors))[:3],
        "server_cpu_percent": 100 * cpu / seconds,
        "members_cpu_percent": 100 * client_cpu / seconds,  # this script, on the same cores
        "server_rss_mb": rss_mb,
    }


def predict_cpu_ms(base: str, process: psutil.Process, calls: int = 40) -> float:
    """The server's CPU time per `/predict` (gradio_client, one call after another), each text a word longer than
    the one before, as typing makes them: the prefix cache holds the rest."""
    from gradio_client import Client

    client, text = Client(base, verbose=False), "The weather in Berlin is"
    client.predict(prompt=text, lang="en", api_name="/predict")
    before = process.cpu_times()
    for index in range(calls):
        text += " " + WORDS[index % len(WORDS)]
        client.predict(prompt=text, lang="en", api_name="/predict")
    after = process.cpu_times()
    return (after.user + after.system - before.user - before.system) / calls * 1e3


def measure(folder: Path, sizes: list[int], seconds: float, warmup: float, port: int | None = None) -> list[dict]:
    """A server process on the checkpoint, then each room size in turn."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}/"
    server = start_server(folder, port, SERVER_LOG)
    rows = []
    try:
        wait_until_up(base, server, SERVER_LOG)
        events = Events.from_config(httpx.get(f"{base}config", timeout=30).json())
        process = psutil.Process(server.pid)
        for members in sizes:
            before, own = process.cpu_times(), time.process_time()
            started = time.monotonic()
            tally = asyncio.run(run_room(base, events, members, seconds, warmup))
            after = process.cpu_times()
            share = seconds / (time.monotonic() - started)  # the measured part of the run
            cpu = (after.user + after.system - before.user - before.system) * share
            client_cpu = (time.process_time() - own) * share
            rows.append(summary(members, seconds, tally, cpu, client_cpu, process.memory_info().rss / 1e6))
            print(json.dumps(rows[-1]), flush=True)
        rows.append({"predict_server_cpu_ms": predict_cpu_ms(base, process)})
        print(json.dumps(rows[-1]), flush=True)
    finally:
        stop(server)
    return rows


def main() -> None:
    from benchmarks.run import MODEL_DIR, write_checkpoint

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", default="1,16,64,128,256", help="room sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per room size")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds per room size before measuring")
    parser.add_argument("--model", type=Path, default=None, help="checkpoint folder (default: real-size, random)")
    args = parser.parse_args()
    folder = args.model or MODEL_DIR
    if args.model is None and not (MODEL_DIR / "model.safetensors").is_file():
        write_checkpoint(MODEL_DIR)
    rows = measure(folder, [int(n) for n in args.members.split(",")], args.seconds, args.warmup)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "model": str(folder), "rows": rows}, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
