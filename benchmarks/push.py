"""python -m benchmarks.push: two ways to push a speaker's view to N listeners, measured on the same server. The
room's route (server-sent events beside Gradio's, each change encoded once) against a Gradio event per listener that
streams each change through the queue. A view of the page's size changes twice a second; per way and N: the server's
CPU and the changes each listener received."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import threading
import time
import uuid

import httpx
import psutil

from benchmarks.server_process import free_port

CHANGE_EVERY = 0.5  # seconds
VIEW_BYTES = 12_000  # about the page's view of a 40-word text: the coloured text and the chart's JSON


def serve(port: int, writer) -> None:
    """The server process: one room whose view changes every CHANGE_EVERY, a Gradio event that streams it; the
    room's code is sent back through `writer`."""
    import gradio as gr

    from xlm_demo.page.follow.layout import BlocksWithRooms

    with BlocksWithRooms(analytics_enabled=False) as demo:
        code, view = gr.Textbox(elem_id="code"), gr.HTML(elem_id="view")
        room = demo.rooms.open("speaker")

        async def follow(_code: str):
            """A listener's event: each change of the room's view, as Gradio streams a generator's outputs."""
            async for message in room.messages():
                yield message.decode()

        code.submit(follow, code, view, concurrency_limit=None, show_progress="hidden")

    def change() -> None:
        for index in range(sys.maxsize):
            room.publish({"prompt": f"change {index}", "output": "x" * VIEW_BYTES})
            time.sleep(CHANGE_EVERY)

    threading.Thread(target=change, daemon=True).start()
    writer.send(room.code)
    demo.queue(max_size=4096).launch(server_port=port, quiet=True, max_threads=64)


async def listen_route(client, base: str, code: str, counts: list, index: int) -> None:
    async with client.stream("GET", f"{base}room/{code}/events") as stream:
        async for line in stream.aiter_lines():
            counts[index] += line.startswith("data: ")


async def listen_event(client, base: str, fn_index: int, trigger: int, counts: list, index: int) -> None:
    session = uuid.uuid4().hex
    body = {"data": ["x"], "event_data": None, "fn_index": fn_index, "trigger_id": trigger, "session_hash": session}
    await client.post(f"{base}gradio_api/queue/join", json=body)
    async with client.stream("GET", f"{base}gradio_api/queue/data", params={"session_hash": session}) as stream:
        async for line in stream.aiter_lines():
            counts[index] += '"process_generating"' in line


async def measure(base: str, way: str, listeners: int, seconds: float, server_pid: int, code: str) -> dict:
    limits = httpx.Limits(max_connections=listeners + 10, max_keepalive_connections=listeners + 10)
    config = httpx.get(f"{base}config").json()
    dep = next(i for i, d in enumerate(config["dependencies"]) if d.get("backend_fn", True))
    fn_index, trigger = config["dependencies"][dep].get("id", dep), config["dependencies"][dep]["targets"][0][0]
    counts = [0] * listeners
    async with httpx.AsyncClient(timeout=None, limits=limits) as client:
        if way == "route":
            tasks = [asyncio.create_task(listen_route(client, base, code, counts, i)) for i in range(listeners)]
        else:
            tasks = [
                asyncio.create_task(listen_event(client, base, fn_index, trigger, counts, i)) for i in range(listeners)
            ]
        await asyncio.sleep(3.0)  # every listener connected
        process = psutil.Process(server_pid)
        before, received, started = process.cpu_times(), sum(counts), time.monotonic()
        await asyncio.sleep(seconds)
        after, elapsed = process.cpu_times(), time.monotonic() - started
        received = sum(counts) - received
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "way": way,
        "listeners": listeners,
        "server_cpu_percent": 100 * (after.user + after.system - before.user - before.system) / elapsed,
        "changes_received_per_listener": received / max(listeners, 1),
        "changes_published": elapsed / CHANGE_EVERY,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listeners", default="0,200", help="listeners per run, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    port = free_port()
    reader, writer = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=serve, args=(port, writer), daemon=True)
    server.start()
    code = reader.recv()
    base = f"http://127.0.0.1:{port}/"
    for _ in range(120):
        try:
            httpx.get(base, timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.5)
    try:
        for listeners in (int(n) for n in args.listeners.split(",")):
            for way in ("route", "event") if listeners else ("route",):
                row = asyncio.run(measure(base, way, listeners, args.seconds, server.pid, code))
                print(json.dumps(row), flush=True)
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
