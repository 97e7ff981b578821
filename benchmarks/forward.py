"""python -m benchmarks.forward: how many page requests a second one front forwards to the model tier when the
model answers at once. Two replicas on Ray (2 CPUs) answer every view with one record computed when they started;
the front (the page, the view route, the rooms) runs in this process as `serve --replicas` runs it; N pages in a
process of their own post keystrokes as fast as they are answered. Per N: requests per second, latency p50 and
p95, and the front's CPU per request (what bounds it on a machine of its own: one core forwards 1000 / that). With
--profile, py-spy samples the front while measuring and the split of its work is printed (benchmarks/profile.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import time
import uuid

import httpx
import psutil

from benchmarks import profile
from benchmarks.follow import PAGE_DEFAULTS, person
from benchmarks.room import percentile_ms
from benchmarks.server_process import ROOT, free_port

RESULTS = ROOT / "build" / "forward.json"
BUNDLED_MODEL = ROOT / "assets" / "xlm-mini-ende"


class InstantReplica:
    """A replica whose model answers at once: every view is the record of one text, computed when it started."""

    def __init__(self, model: str):
        from ray import serve

        from xlm_demo.engine import Engine
        from xlm_demo.page.next_token.actions import answer
        from xlm_demo.page.requests import ModelFacts, read_view_request

        engine = Engine.load(model, device="cpu")
        self.model_facts = ModelFacts.of(engine)
        request = read_view_request(self.model_facts, {**PAGE_DEFAULTS, "prompt": "The weather in Berlin is"})
        self.record = answer(engine, request).to_json()
        self.name = serve.get_replica_context().replica_id.unique_id

    def facts(self):
        return self.model_facts

    async def view(self, request, whole: bool):
        from xlm_demo.page.tier import Served

        return Served(self.record, self.record if whole else None, self.name)


async def pages_post(base: str, pages: int, seconds: float) -> dict:
    """`pages` pages, each posting its next keystroke as soon as the last is answered, for `seconds`; each has a
    connection of its own, as each person's browser does (one client's pool shared by all cost this process more
    CPU per request than the front spent on it)."""
    latencies, errors, until = [], [], time.monotonic() + seconds

    async def page(n: int) -> None:
        page_id, seq = uuid.uuid4().hex, 0
        async with httpx.AsyncClient(timeout=60) as client:
            while time.monotonic() < until:
                seq += 1
                body = {**PAGE_DEFAULTS, "prompt": f"Page {page_id[:4]} word {seq}", "page": page_id, "seq": seq}
                began = time.monotonic()
                answer = await client.post(f"{base}view", json=body, headers=person(n, hall=False))  # own address
                if answer.status_code == 200:
                    latencies.append(time.monotonic() - began)
                else:
                    errors.append(f"HTTP {answer.status_code}: {answer.text[:80]}")

    await asyncio.gather(*(page(n) for n in range(pages)))
    return {"latencies": latencies, "errors": errors, "client_cpu": time.process_time()}


def pages_process(base: str, pages: int, seconds: float, results) -> None:
    results.put(asyncio.run(pages_post(base, pages, seconds)))


def measure(base: str, pages: int, seconds: float, profiled: bool) -> dict:
    """One run of `pages` pages: the rate, the latency, this process's (the front's) CPU per request, and,
    `profiled`, the split of the front's work."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=pages_process, args=(base, pages, seconds, results))
    front = psutil.Process()
    process.start()
    time.sleep(2.0)  # the pages' process starts
    before = front.cpu_times()
    samples = ROOT / "build" / f"forward-profile-{pages}.txt"
    sampler = profile.start(os.getpid(), seconds - 2.0, samples) if profiled else None
    got = results.get(timeout=seconds + 300)
    after = front.cpu_times()
    process.join()
    answered = len(got["latencies"])
    front_cpu = (after.user - before.user) + (after.system - before.system)
    row = {
        "pages": pages,
        "requests_per_s": answered / seconds,
        "p50_ms": percentile_ms(got["latencies"], 0.50),
        "p95_ms": percentile_ms(got["latencies"], 0.95),
        "errors": len(got["errors"]),
        "error_examples": sorted(set(got["errors"]))[:3],
        "front_cpu_ms_per_request": 1e3 * front_cpu / max(1, answered),  # the front's share: its window is wider
        "pages_cpu_percent": 100 * got["client_cpu"] / seconds,
        "load": os.getloadavg()[0],  # the machine's, over the last minute
    }
    if sampler is not None:
        sampler.wait()
        row["profile"] = profile.split(samples)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", default="16,64", help="pages posting at once, comma-separated")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per run")
    parser.add_argument("--profile", action="store_true", help="sample the front with py-spy while measuring")
    args = parser.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import ray
    from ray import serve

    from xlm_demo.cluster.start import deploy
    from xlm_demo.server import ROOM_SIZE, create_app, launch_options

    ray.init(num_cpus=2, include_dashboard=False)
    try:
        tier = deploy(InstantReplica, (str(BUNDLED_MODEL),), 2, 1, ROOM_SIZE)
        options = launch_options("127.0.0.1", free_port(), share=False)
        demo = create_app(str(BUNDLED_MODEL), device="cpu", tier=tier)
        demo.launch(**options, prevent_thread_lock=True, quiet=True)
        base = f"http://127.0.0.1:{options['server_port']}/"
        rows = []
        for pages in (int(n) for n in args.pages.split(",")):
            rows.append(measure(base, pages, args.seconds, args.profile))
            print(json.dumps({key: value for key, value in rows[-1].items() if key != "profile"}), flush=True)
            if args.profile:
                print(profile.table(rows[-1]["profile"]), flush=True)
        demo.close()
    finally:
        serve.shutdown()
        ray.shutdown()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "load": os.getloadavg(), "rows": rows}, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
