"""A talk from a laptop: the room's link opens from the machine's network address when the server listens on every
interface, and says what fixes it when it listens on loopback only; a taken port is told before the model loads."""

import asyncio
import json
import re
import socket
import subprocess
import sys
import uuid

import httpx
import pytest

from benchmarks.follow import gradio_event, share_event
from xlm_demo.page.follow.share import network_address


def share_output(base: str) -> str:
    """What the page shows after Share with the room (the event's outputs as JSON), from a page at `base`."""

    async def share():
        async with httpx.AsyncClient(timeout=60) as client:
            event = share_event((await client.get(f"{base}config")).json())
            return await gradio_event(client, base, uuid.uuid4().hex, event)

    error, outputs = asyncio.run(share())
    assert error is None
    return json.dumps(outputs)


def test_a_presenter_on_localhost_shares_the_machines_network_address(network_server):
    address = network_address()
    if address is None:
        pytest.skip("this machine has no network address but loopback")
    shown = share_output(network_server)
    link = re.search(r'href=\\"([^"\\]+)\\"', shown).group(1)
    port = int(network_server.rstrip("/").rsplit(":", 1)[1])
    assert link.startswith(f"http://{address}:{port}/?follow=") and "Phones cannot" not in shown
    page = httpx.get(link, timeout=30)  # as a phone in the room opens it: at the network address
    assert page.status_code == 200 and "gradio" in page.text.lower()
    code = link.split("follow=")[1]
    with httpx.stream("GET", f"http://{address}:{port}/room/{code}/events", timeout=30) as stream:
        assert stream.status_code == 200


def test_a_server_on_loopback_only_says_what_lets_the_room_in(server):
    shown = share_output(server)
    assert "Phones cannot open this link: the server listens on this computer only." in shown
    assert "make talk" in shown


def test_talk_on_a_taken_port_says_so_before_the_model_loads(tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "xlm_demo", "talk", "--model", "bundled", "--port", str(port)],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""  # and stderr holds no line of a model being loaded:
    assert done.stderr == f"error: Port {port} on 0.0.0.0 is taken by another program; choose another with --port, " \
                          f"e.g. --port {port + 1}\n"  # fmt: skip


@pytest.mark.parametrize(
    "argv, sentence",
    [
        (["--port", "70000"], "error: --port 70000 is not a port: choose one from 1 to 65535, e.g. --port 7860\n"),
        (
            ["--host", "192.0.2.77"],
            "error: --host 192.0.2.77 is not an address of this computer: try --host 127.0.0.1\n",
        ),
    ],
)
def test_a_port_or_host_the_server_cannot_take_is_one_sentence(argv, sentence, tmp_path):
    done = subprocess.run([sys.executable, "-m", "xlm_demo", "serve", "--model", "bundled", *argv],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert (done.returncode, done.stderr) == (2, sentence)
