"""python -m benchmarks.follow: a presenter types a word every half second through the page's own requests, then
continues 64 tokens, first alone, then with N followers holding the room's stream open. Per phase: the server's CPU,
the presenter's keystroke p50 and p95, how long after the keystroke each follower saw its text, and how far behind
the presenter's own stream each follower saw each continued token."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import time
import uuid
from pathlib import Path

import httpx
import psutil

from benchmarks.room import WORDS, Member, percentile_ms
from benchmarks.server_process import ROOT, free_port, start_server, stop, wait_until_up

RESULTS = ROOT / "build" / "follow.json"
SERVER_LOG = ROOT / "build" / "follow-server.log"
BUNDLED_MODEL = ROOT / "assets" / "xlm-mini-ende"
KEY_EVERY = 0.5  # seconds between the presenter's words
CONTINUE_TOKENS = 64
# What the page's requests carry besides the text (the page's defaults), as the view route reads them.
PAGE_DEFAULTS = {
    "lang": "en",
    "top_k": 10,
    "literal": False,
    "continue_lang": "",
    "n_tokens": CONTINUE_TOKENS,
    "sampling": {"sample": False, "temperature": 1, "top_k": 0, "top_p": 1, "seed": 0},
    "table": False,
}


async def gradio_event(client, base: str, session: str, event: tuple[int, int]) -> tuple[str | None, list | None]:
    """One of the page's Gradio events, without inputs, as the browser sends it: join the queue, then read the
    session's stream to the event's end; the error the page would show (None for none) and the event's outputs."""
    fn_index, trigger = event
    body = {"data": [], "event_data": None, "fn_index": fn_index, "trigger_id": trigger, "session_hash": session}
    joined = await client.post(f"{base}gradio_api/queue/join", json=body)
    if joined.status_code != 200:
        return f"HTTP {joined.status_code}: {joined.text[:120]}", None
    async with client.stream("GET", f"{base}gradio_api/queue/data", params={"session_hash": session}) as stream:
        async for line in stream.aiter_lines():
            message = json.loads(line.removeprefix("data: ")) if line.startswith("data: ") else {}
            if message.get("event_id") != joined.json()["event_id"] or message.get("msg") != "process_completed":
                continue
            if not message.get("success"):
                return str(message.get("output", {}).get("error") or message)[:120], None
            return None, message["output"]["data"]
    return "the stream ended before the event completed", None


def share_event(config: dict) -> tuple[int, int]:
    """The fn_index and trigger of the Share with the room button's click."""
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    for index, dep in enumerate(config["dependencies"]):
        for target, event in dep["targets"]:
            if ids.get(target) == "share-room" and event == "click":
                return dep.get("id", index), target
    raise LookupError("no click event on #share-room")


def person(n: int, hall: bool) -> dict[str, str]:
    """The headers of the n-th person behind the proxy (as on a Space): an address of their own, so that the
    server's caps per address count each follower once, or in a `hall` everyone's one address (a conference's
    Wi-Fi)."""
    n = 0 if hall else n
    return {"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}


async def follower(client: httpx.AsyncClient, base: str, code: str, n: int, hall: bool, seen: dict, ready):
    """The n-th follower's stream: the time each text arrives, until the room closes or the task is cancelled."""
    async with client.stream("GET", f"{base}room/{code}/events", headers=person(n, hall)) as stream:
        stream.raise_for_status()
        ready()
        async for line in stream.aiter_lines():
            if line.startswith("data: ") and "prompt" in (record := json.loads(line.removeprefix("data: "))):
                seen.setdefault(seen_as(record), []).append(time.monotonic())


def seen_as(record: dict) -> str:
    """What a view shows, as the presenter and followers compare it: the text, and how many tokens were chosen."""
    return f"{record['prompt']} +{len(record['appended'])}"


async def hold_streams(base: str, code: str, followers: int, hall: bool, connected, done) -> dict[str, list[float]]:
    """`followers` streams open until `done` is set; `connected` is set once all are."""
    limits = httpx.Limits(max_connections=followers + 10, max_keepalive_connections=followers + 10)
    seen: dict[str, list[float]] = {}
    opened = 0

    def ready() -> None:
        nonlocal opened
        opened += 1
        if opened == followers:
            connected.set()

    async with httpx.AsyncClient(timeout=None, limits=limits) as client:
        streams = [asyncio.create_task(follower(client, base, code, n, hall, seen, ready)) for n in range(followers)]
        while not done.is_set():
            await asyncio.sleep(0.1)
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    return seen


def followers_process(base: str, code: str, followers: int, hall: bool, connected, done, results) -> None:
    """The followers in a process of their own, so that reading their streams does not slow the presenter's client;
    the arrival times go back through `results` (time.monotonic is the same clock in every process)."""
    results.put(asyncio.run(hold_streams(base, code, followers, hall, connected, done)))


async def presenter_types(client, base: str, presenter: Member, seconds: float, sent) -> list:
    """Words at KEY_EVERY for `seconds`; the keystrokes' durations, when each view was answered in `sent`."""
    durations, until = [], time.monotonic() + seconds
    for word in (WORDS * 100)[: int(seconds / KEY_EVERY)]:
        if time.monotonic() >= until:
            break
        presenter.text += " " + word
        began = time.monotonic()
        answer = (await client.post(f"{base}view", json=presenter.body("keystroke"))).raise_for_status()
        presenter.record = answer.json()
        sent[seen_as(presenter.record)] = began
        durations.append(time.monotonic() - began)
        await asyncio.sleep(max(0.0, KEY_EVERY - (time.monotonic() - began)))
    return durations


async def present(client: httpx.AsyncClient, base: str, code: str, key: str) -> None:
    """The presenter's presence stream, held open until cancelled: the room lives while it is."""
    async with client.stream("GET", f"{base}room/{code}/presence", params={"key": key}) as stream:
        async for _ in stream.aiter_lines():
            pass


async def presenter_continues(client, base: str, presenter: Member) -> dict[str, float]:
    """A Continue of CONTINUE_TOKENS: when the presenter's page read each token's record."""
    read = {}
    async with client.stream("POST", f"{base}view/continue", json=presenter.body("continue")) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                presenter.record = json.loads(line.removeprefix("data: "))
                read.setdefault(seen_as(presenter.record), time.monotonic())
    return read


async def phase(base: str, share: tuple, followers: int, hall: bool, seconds: float, server) -> dict:
    """One presenter, `followers` streams held open by another process: CPU, keystrokes and the followers' delay."""
    async with httpx.AsyncClient(timeout=120) as client:
        error, outputs = await gradio_event(client, base, uuid.uuid4().hex, share)
        if error:
            raise RuntimeError(error)
        code, key = re.search(r'data-code=\\"([\w-]+)\\" data-key=\\"([\w-]+)', json.dumps(outputs)).groups()
        presence = asyncio.create_task(present(client, base, code, key))  # as the presenter's page does
        connected, done, results = multiprocessing.Event(), multiprocessing.Event(), multiprocessing.Queue()
        arguments = (base, code, followers, hall, connected, done, results)
        holder = multiprocessing.Process(target=followers_process, args=arguments)
        holder.start()
        if followers and not await asyncio.to_thread(connected.wait, 60):
            raise RuntimeError("the followers' streams did not all open within 60 s")
        requests = {
            "keystroke": {**PAGE_DEFAULTS, "action": "show"},
            "continue": {**PAGE_DEFAULTS, "action": "continue"},
        }
        presenter = Member(0, requests, room=key)
        presenter.text = "Warming up:"
        await presenter_types(client, base, presenter, 2.0, {})  # not counted
        process, sent = psutil.Process(server.pid), {}
        before, started = process.cpu_times(), time.monotonic()
        presenter.text = "The presenter says"
        keystrokes = await presenter_types(client, base, presenter, seconds, sent)
        continued = await presenter_continues(client, base, presenter)
        await asyncio.sleep(1.0)  # the last views reach the followers
        after, elapsed = process.cpu_times(), time.monotonic() - started
        done.set()
        seen = await asyncio.to_thread(results.get, True, 60)
        holder.join()
        presence.cancel()
    delays = [t - sent[text] for text, times in seen.items() if text in sent for t in times]
    behind = [t - continued[text] for text, times in seen.items() if text in continued for t in times]
    return {
        "followers": followers,
        "addresses": 1 if hall else followers,
        "server_cpu_percent": 100 * (after.user + after.system - before.user - before.system) / elapsed,
        "keystrokes": len(keystrokes),
        "keystroke_p50_ms": percentile_ms(keystrokes, 0.50),
        "keystroke_p95_ms": percentile_ms(keystrokes, 0.95),
        "views_seen": len(delays),
        "views_expected": followers * len(keystrokes),
        "follower_delay_p50_ms": percentile_ms(delays, 0.50),
        "follower_delay_p95_ms": percentile_ms(delays, 0.95),
        "continued_tokens_seen": len(behind),
        "continue_behind_p50_ms": percentile_ms(behind, 0.50),
        "continue_behind_p95_ms": percentile_ms(behind, 0.95),
        "server_rss_mb": process.memory_info().rss / 1e6,
    }


def measure(model: Path, sizes: list[int], seconds: float, hall: bool = False) -> list[dict]:
    """A server process on the checkpoint, then a phase per number of followers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    server = start_server(model, port, SERVER_LOG)
    rows = []
    try:
        wait_until_up(base, server, SERVER_LOG)
        share = share_event(httpx.get(f"{base}config", timeout=30).json())
        for followers in sizes:
            rows.append(asyncio.run(phase(base, share, followers, hall, seconds, server)))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        stop(server)
    return rows


def report(rows: list[dict]) -> str:
    """The followers' table of docs/benchmarks.md."""
    lines = [
        "| followers (addresses) | server CPU | keystroke p50 (p95) | a follower sees the word, p50 (p95) | "
        "a follower behind the presenter's stream during Continue, p50 (p95) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        seen = f"{row['follower_delay_p50_ms'] or 0:.0f} ({row['follower_delay_p95_ms'] or 0:.0f}) ms"
        behind = f"{row['continue_behind_p50_ms'] or 0:.0f} ({row['continue_behind_p95_ms'] or 0:.0f}) ms"
        keystroke = f"{row['keystroke_p50_ms']:.0f} ({row['keystroke_p95_ms']:.0f}) ms"
        lines.append(f"| {row['followers']} ({row['addresses']}) | {row['server_cpu_percent']:.0f}% | {keystroke} "
                     f"| {seen} | {behind} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--followers", default="0,200", help="followers per phase, comma-separated")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per phase")
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL, help="checkpoint folder (default: bundled)")
    parser.add_argument("--hall", action="store_true", help="every follower behind one address (default: one each)")
    args = parser.parse_args()
    rows = measure(args.model, [int(n) for n in args.followers.split(",")], args.seconds, args.hall)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    record = {"date": time.strftime("%Y-%m-%d"), "model": str(args.model), "rows": rows}
    RESULTS.write_text(json.dumps(record, indent=1))
    print(report(rows))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
