"""make room: a talk's audience on the page. Chromium types a character, presses Step and Continue on the page, and
the requests it sends for them are recorded; then N members, each a page of its own, replay them: a word typed about
every second at the end of their own text (the request the page sends, with their text, their chosen tokens, what
their page draws and their request number), now and then Step or Continue. Per N: keystroke p50 and p95, answered
per second, errors, and the server's CPU per keystroke inside and outside the model's batches. Each member comes
from an address of its own behind the proxy (X-Forwarded-For), as an audience on a Space does. With --profile, py-spy
samples the server during each measured part and the split of its work is printed (benchmarks/profile.py).

The server runs in this process, as `make run` starts it, so that its threads can be told apart: the scheduler's
thread and the numerical libraries' own threads run the model's batches; the event loop and the request threads do
everything else. The members run in a process of their own."""

from __future__ import annotations

import os

from xlm_demo.server import settle_blas_threads

settle_blas_threads()  # as app.py, before numpy loads

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import random  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import psutil  # noqa: E402

from benchmarks import profile  # noqa: E402
from benchmarks.server_process import ROOT, free_port  # noqa: E402

RESULTS = ROOT / "build" / "room.json"
# The words members type, a word about every second.
# fmt: off
WORDS = [
    "the", "weather", "in", "Berlin", "is", "cold", "today", "and", "people", "walk", "along", "the", "river", "to",
    "the", "old", "market", "where", "they", "buy", "bread", "and", "cheese", "before", "the", "long", "winter",
    "evening", "begins", "with", "music", "and", "stories", "told", "by", "the", "fire",
]
# fmt: on
STEP_EVERY, CONTINUE_EVERY = 10, 25  # of a member's actions: a Step, a Continue of the page's tokens per Continue
MODEL_THREAD = "xlm-demo-scheduler"  # engine/scheduler.py's thread


@dataclass
class Tally:
    """What the members saw during the measured part of one run."""

    keystrokes: list[float] = field(default_factory=list)  # seconds from the key to the answer
    steps: list[float] = field(default_factory=list)
    continues: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last_seen: dict[int, tuple[str, dict]] = field(default_factory=dict)  # member -> (text, record) after its last key


def record_requests(base: str) -> dict[str, dict]:
    """What Chromium's page sends for a keystroke, a Step and a Continue: each request's JSON body, by action."""
    from playwright.sync_api import sync_playwright

    sent: dict[str, dict] = {}

    def keep(request) -> None:
        """The last keystroke's request (each key sends one, or one for the keys typed while another ran), then the
        first of each button's."""
        if request.method == "POST" and request.url.endswith(("/view", "/view/continue")):
            body = json.loads(request.post_data)
            if body["action"] == "show" and "step" not in sent:
                sent["keystroke"] = body
            else:
                sent.setdefault(body["action"], body)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(base)
        page.wait_for_selector("#candidates-plot .bars path", timeout=120_000)
        sent.clear()  # the first view; a keystroke is what comes next
        page.on("request", keep)
        page.locator("#prompt textarea").press("End")
        page.locator("#prompt textarea").type(" x")
        page.wait_for_timeout(1000)
        for button in ("#step", "#continue"):
            page.locator(button).click()
            page.wait_for_timeout(1500)
        browser.close()
    missing = {"keystroke", "step", "continue"} - set(sent)
    if missing:
        raise RuntimeError(f"the page sent no request for {', '.join(sorted(missing))}")
    return sent


class Member:
    """One person's page: its own text, chosen tokens, what it draws, and its request numbers."""

    def __init__(self, index: int, recorded: dict[str, dict], room: str = ""):
        self.index, self.recorded, self.room = index, recorded, room  # room: the presenter's key, if presenting
        self.page, self.seq = uuid.uuid4().hex, 0
        self.address = f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"  # as its proxy says it
        self.text, self.record = f"Member {index} says that", None

    def body(self, action: str) -> dict:
        """The request the page sends for an action now: the recorded one, with this page's own values."""
        self.seq += 1
        shown = self.record if self.record and self.record["prompt"] == self.text else None
        return {
            **self.recorded[action],
            "prompt": self.text,
            "page": self.page,
            "seq": self.seq,
            "appended": shown["appended"] if shown else [],
            "appended_langs": shown["appended_langs"] if shown else [],
            "drawn": {"ids": self.record["ids"], "langs": self.record["langs"], "typed": self.record["typed"]}
            if self.record
            else None,
            "room": self.room,
        }


async def send(client: httpx.AsyncClient, base: str, member: Member, action: str) -> str | None:
    """One action's request, read to its end as the page reads it; the error the member would see, or None."""
    headers = {"X-Forwarded-For": member.address}
    if action == "continue":
        async with client.stream("POST", f"{base}view/continue", json=member.body(action), headers=headers) as stream:
            if stream.status_code != 200:
                return f"HTTP {stream.status_code}: {(await stream.aread())[:120]!r}"
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    member.record = json.loads(line.removeprefix("data: "))
        return None
    answer = await client.post(f"{base}view", json=member.body(action), headers=headers)
    if answer.status_code != 200:
        return f"HTTP {answer.status_code}: {answer.text[:120]}"
    member.record = answer.json()
    return None


async def member_types(base: str, member: Member, start_at: float, until: float, tally: Tally) -> None:
    """One person: types a word about every second at the end of their own text; now and then Step or Continue.
    Each member has a connection of its own, as each person's browser does (one client's pool shared by hundreds
    of members cost the members' process more CPU per answer than the server spent on it)."""
    rng, actions = random.Random(member.index), 0
    await asyncio.sleep(rng.uniform(0, 1.0))
    async with httpx.AsyncClient(timeout=120) as client:
        while time.monotonic() < until:
            actions += 1
            if actions % CONTINUE_EVERY == 0:
                kind, action = tally.continues, "continue"
            elif actions % STEP_EVERY == 0:
                kind, action = tally.steps, "step"
            else:
                member.text += " " + rng.choice(WORDS)
                kind, action = tally.keystrokes, "keystroke"
            began = time.monotonic()
            try:
                error = await send(client, base, member, action)
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {failure}"[:120]
            if kind is tally.keystrokes and error is None:
                tally.last_seen[member.index] = (member.text, member.record)
            if began >= start_at:  # the first seconds warm the server up and are not counted
                if error is None:
                    kind.append(time.monotonic() - began)
                else:
                    tally.errors.append(error)
            await asyncio.sleep(max(0.0, rng.uniform(0.5, 1.5) - (time.monotonic() - began)))


async def run_room(base: str, recorded: dict[str, dict], members: int, seconds: float, warmup: float) -> Tally:
    """Every member at once for `warmup` + `seconds`, counted after the warm-up."""
    tally = Tally()
    now = time.monotonic()
    people = [Member(i, recorded) for i in range(members)]
    await asyncio.gather(*(member_types(base, m, now + warmup, now + warmup + seconds, tally) for m in people))
    return tally


def room_process(base: str, recorded: dict, members: int, seconds: float, warmup: float, results) -> None:
    """The members, in a process of their own: the tally, and this process's CPU seconds."""
    tally = asyncio.run(run_room(base, recorded, members, seconds, warmup))
    results.put((asdict(tally), time.process_time()))


def percentile_ms(values: list[float], q: float) -> float | None:
    """The q-quantile of durations in seconds, in ms (the nearest rank); None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def thread_cpu() -> dict[int, float]:
    """CPU seconds of each of this process's threads, by native id."""
    return {thread.id: thread.user_time + thread.system_time for thread in psutil.Process().threads()}


def model_threads() -> set[int]:
    """The threads that run the model's batches: the scheduler's, and every thread Python did not start (the
    numerical libraries' own)."""
    python = {thread.native_id: thread.name for thread in threading.enumerate()}
    return {tid for tid in thread_cpu() if python.get(tid, MODEL_THREAD) == MODEL_THREAD}


def summary(members: int, seconds: float, tally: Tally, inside: float, outside: float, client_cpu: float) -> dict:
    """One row of the table."""
    answered = len(tally.keystrokes) + len(tally.steps) + len(tally.continues)
    return {
        "members": members,
        "keystrokes_per_s": len(tally.keystrokes) / seconds,
        "keystroke_p50_ms": percentile_ms(tally.keystrokes, 0.50),
        "keystroke_p95_ms": percentile_ms(tally.keystrokes, 0.95),
        "step_p95_ms": percentile_ms(tally.steps, 0.95),
        "continue_p95_ms": percentile_ms(tally.continues, 0.95),
        "errors": len(tally.errors),
        "error_examples": sorted(set(tally.errors))[:3],
        "server_cpu_percent": 100 * (inside + outside) / seconds,
        "model_cpu_ms_per_request": 1e3 * inside / max(1, answered),
        "other_cpu_ms_per_request": 1e3 * outside / max(1, answered),  # the server's own work around the model
        "members_cpu_percent": 100 * client_cpu / seconds,  # the members' process, on the same cores
        "server_rss_mb": psutil.Process().memory_info().rss / 1e6,
    }


def measure_room(base: str, recorded: dict, members: int, seconds: float, warmup: float, profiled: bool) -> dict:
    """One room size: the members in their own process, the server's threads' CPU over the measured part, and,
    `profiled`, the split of the server's work over it."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    members_process = context.Process(target=room_process, args=(base, recorded, members, seconds, warmup, results))
    members_process.start()
    time.sleep(warmup + 1.0)  # the members' process starts, then warms the server up
    before, model = thread_cpu(), model_threads()
    started = time.monotonic()
    samples = ROOT / "build" / f"room-profile-{members}.txt"
    sampler = profile.start(os.getpid(), seconds - 1.0, samples) if profiled else None
    tally_dict, client_cpu = results.get(timeout=warmup + seconds + 600)
    after, elapsed = thread_cpu(), time.monotonic() - started
    model |= model_threads()  # a scheduler's thread started during the run too
    members_process.join()
    share = min(1.0, seconds / elapsed)  # the part of the window the members were measuring
    used = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    inside = share * sum(cpu for tid, cpu in used.items() if tid in model)
    outside = share * sum(cpu for tid, cpu in used.items() if tid not in model)
    tally = Tally(**tally_dict)
    row = summary(members, seconds, tally, inside, outside, client_cpu * seconds / (warmup + seconds))
    if sampler is not None:
        sampler.wait()
        row["profile"] = profile.split(samples)
    return row


def serve(folder: Path, dtype: str = "float32", quantize: str = "none", replicas: int = 0) -> tuple[object, str]:
    """The demo in this process, as `make run` starts it, on a free loopback port, in the precision asked; with
    `replicas`, as `serve --replicas` starts it, the model on that many replicas of one core each on Ray (Ray
    started here)."""
    from xlm_demo.server import create_app, launch_options, return_freed_memory, start_replicas

    return_freed_memory()
    options = launch_options("127.0.0.1", free_port(), share=False)
    tier = start_replicas(str(folder), "cpu", dtype, quantize, replicas, 1) if replicas else None
    demo = create_app(str(folder), device="cpu", dtype=dtype, quantize=quantize, tier=tier)
    demo.launch(**options, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{options['server_port']}/"


def main() -> None:
    from benchmarks.run import MODEL_DIR, write_checkpoint

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", default="1,16,64,128,256", help="room sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per room size")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds per room size before measuring")
    parser.add_argument("--model", type=Path, default=None, help="checkpoint folder (default: real-size, random)")
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy while measuring")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="as the demo's --dtype")
    parser.add_argument("--quantize", default="none", choices=["none", "int8"], help="as the demo's --quantize")
    parser.add_argument("--replicas", type=int, default=0, help="the model on this many replicas on Ray (default: 0)")
    args = parser.parse_args()
    folder = args.model or MODEL_DIR
    if args.model is None and not (MODEL_DIR / "model.safetensors").is_file():
        write_checkpoint(MODEL_DIR)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    demo, base = serve(folder, args.dtype, args.quantize, args.replicas)
    try:
        recorded = record_requests(base)
        rows = []
        for members in (int(n) for n in args.members.split(",")):
            rows.append(measure_room(base, recorded, members, args.seconds, args.warmup, args.profile))
            print(json.dumps({key: value for key, value in rows[-1].items() if key != "profile"}), flush=True)
            if args.profile:
                print(profile.table(rows[-1]["profile"]), flush=True)
    finally:
        demo.close()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    setup = {"dtype": args.dtype, "quantize": args.quantize, "replicas": args.replicas}
    RESULTS.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "model": str(folder), **setup, "rows": rows},
                                  indent=1))  # fmt: skip
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
