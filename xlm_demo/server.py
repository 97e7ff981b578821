"""Start the web demo: load the model once, build the page, launch Gradio with safe defaults."""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import io
import logging
import os
import socket
from pathlib import Path

from .page.clients import TrustedProxies
from .page.follow.rooms import Rooms
from .page.tier import ModelTier

ASSETS = Path(__file__).resolve().parent.parent / "assets"
# Events waiting for a worker; beyond this a request is told at once that the demo is busy (HTTP 503). A page
# waits for its own event before sending the next (Gradio's trigger_mode="always_last"), so a room of N people
# holds about N events: sized for a large room, a few KB each.
QUEUE_SIZE = 2048
# Events that run sessions (keystrokes, Step, Continue, /predict ...) and wait on the engine's scheduler at once;
# each batch runs all that wait. Each holds a worker thread, idle while it waits.
ROOM_SIZE = 256
# The prefix cache of a server, sized for a room: 16,384 positions of the real model (768 MB), 256 members' texts of
# 64 positions, a minute of typing each. Once the members' texts outgrow it, every keystroke of a member whose text
# was evicted runs the whole text again (with 128 MB, 20 times the positions of a keystroke in a simulated room).
ROOM_PREFIX_CACHE = 768 << 20
MODEL_CONCURRENCY = 2  # events holding the model alone (attention, attribution, the lens), as guards.MODEL_GROUP
# Gradio keeps every session's state, about 130 KB each, and each API call is a session of its own: by default
# up to 10,000 of them (1.3 GB). Beyond this many, the least recently used session is forgotten (its page starts
# its continuation again).
SESSION_CAPACITY = 1000
GRADIO_THREADS = 40  # Gradio's own default, for its other work (state, files)
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's mallopt parameters (malloc.h)

log = logging.getLogger("xlm_demo")


def settle_blas_threads() -> None:
    """Where the process starts, before numpy loads OpenBLAS: its idle threads spin 2^20 cycles after a product
    instead of 2^28, so one event's products do not keep the cores from the next (14 ms of server CPU per /predict
    on the bundled model instead of 77; a token of continuation no slower). A value the user set is kept."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")


def default_host() -> str:
    """127.0.0.1, except on a Hugging Face Space, which must listen on every interface."""
    return "0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1"


def page_scripts(*paths: Path) -> str:
    """The scripts the page runs once loaded (each a JavaScript function), as the one function launch takes."""
    scripts = ",\n".join(path.read_text(encoding="utf-8").strip() for path in paths)
    return f"() => {{ [{scripts}].forEach((run) => run()); }}"


def launch_options(host: str | None, port: int, share: bool) -> dict:
    """Keyword arguments for Blocks.launch: look, renderer, shortcuts, and no telemetry or monitoring."""
    from .page.renderer import renderer_script

    return {
        "server_name": host or default_host(),
        "server_port": port,
        "share": share,
        "css_paths": [ASSETS / "page.css"],
        "js": page_scripts(ASSETS / "shortcuts.js", ASSETS / "follow.js", ASSETS / "presence.js"),
        "head": renderer_script(),  # the renderer, defined before Gradio draws the page
        "enable_monitoring": False,
        "show_error": True,
        "footer_links": ["api"],
        "state_session_capacity": SESSION_CAPACITY,
        "max_threads": ROOM_SIZE + MODEL_CONCURRENCY + GRADIO_THREADS,  # every waiting event holds a thread
    }


def create_app(
    model: str | None,
    device: str = "auto",
    dtype: str = "float32",
    quantize: str = "none",
    queue_size: int = QUEUE_SIZE,
    room_size: int = ROOM_SIZE,
    rooms: Rooms | None = None,
    proxies: TrustedProxies | None = None,
    tier: ModelTier | None = None,
):
    """The queued Blocks for a model: what `serve` launches and tests start; `rooms` with limits of its own, or
    the defaults; `proxies` whose X-Forwarded-For is believed, or the served machine's (TrustedProxies); the page's
    model work on `tier` (default: the engine loaded here)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

    from .api import register_api
    from .engine import Engine
    from .page.follow.layout import BlocksWithRooms
    from .page.layout import build_page, title

    engine = Engine.load(model, device=device, dtype=dtype, quantize=quantize, prefix_cache_bytes=ROOM_PREFIX_CACHE)
    log.info("serving %s on %s (%s)", engine.source, engine.device, engine.dtype)
    with BlocksWithRooms(rooms, proxies, title=title(engine), analytics_enabled=False) as demo:
        build_page(demo, engine, room_size, tier)
        register_api(engine, room_size, tier)
    return demo.queue(max_size=queue_size, default_concurrency_limit=MODEL_CONCURRENCY)


def return_freed_memory() -> None:
    """On glibc, hand large freed tensors back to the system and share two heaps, so memory stays flat under load."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): the allocator as it is
        return
    libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)  # blocks of 1 MB or more are mapped, and unmapped when freed
    libc.mallopt(M_ARENA_MAX, 2)  # not a heap per worker thread, each keeping what it once held


def check_port(host: str, port: int) -> None:
    """Refuse, in one sentence naming the option and before the model loads, an address the server could not listen
    on: a port in use or out of range, a host that is not this machine's."""
    if not 1 <= port <= 65535:
        raise ValueError(f"--port {port} is not a port: choose one from 1 to 65535, e.g. --port 7860")
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: a closed port is free
            probe.bind(address)
    except socket.gaierror:
        raise ValueError(f"--host {host} is not an address of this computer: try --host 127.0.0.1") from None
    except OSError as error:
        raise ValueError(port_refusal(host, port, error.errno)) from None


def port_refusal(host: str, port: int, code: int | None) -> str:
    """Why the server cannot listen on host:port, and the option that changes it."""
    if code == errno.EADDRINUSE:
        return f"Port {port} on {host} is taken by another program; choose another with --port, e.g. --port {port + 1}"
    if code == errno.EACCES:
        return f"Port {port} needs administrator rights here; choose one from 1024 up with --port, e.g. --port 7860"
    if code == errno.EADDRNOTAVAIL:
        return f"--host {host} is not an address of this computer: try --host 127.0.0.1"
    return f"The server cannot listen on {host} port {port} ({os.strerror(code or 0)}); choose another with --port"


def serve(
    model: str | None,
    device: str,
    dtype: str,
    quantize: str,
    host: str | None,
    port: int,
    share: bool,
    forwarded_allow_ips: str | None = None,
    announce: str = "",
    replicas: int = 0,
    replica_cpus: float = 1.0,
) -> None:
    """Load the model once and serve the page until interrupted, believing X-Forwarded-For from the proxies named
    (TrustedProxies.where_served); `announce` is printed once the model is loaded; with `replicas`, the page's
    model work runs on that many replicas on Ray (this machine's, or the cluster RAY_ADDRESS names)."""
    proxies = TrustedProxies.where_served(forwarded_allow_ips)  # mistakes in these are told before the model loads
    check_port(host or default_host(), port)
    check_replicas(replicas, replica_cpus)
    os.environ["FORWARDED_ALLOW_IPS"] = proxies.for_uvicorn()
    return_freed_memory()
    tier = start_replicas(model, device, dtype, quantize, replicas, replica_cpus) if replicas else None
    demo = create_app(model, device, dtype, quantize, proxies=proxies, tier=tier)
    if announce:
        print(announce, flush=True)
    demo.launch(**launch_options(host, port, share))


def talk(model: str | None, device: str, dtype: str, quantize: str, port: int, forwarded_allow_ips: str | None) -> None:
    """Serve the page on every interface, for a talk from a laptop, announcing the address phones open."""
    from .page.follow.share import network_address

    address = network_address()
    if address is None:
        log.warning("this computer has no network address: phones cannot reach it until it joins a network")
    url = f"http://{address or '127.0.0.1'}:{port}/"
    serve(model, device, dtype, quantize, "0.0.0.0", port, False, forwarded_allow_ips, announce=announcement(url))


def announcement(url: str) -> str:
    """What the terminal shows before a talk: the page's address on the network and its QR code."""
    import segno

    code = io.StringIO()
    segno.make(url, error="m").terminal(out=code, compact=True, border=2)
    return f"{code.getvalue()}The page, for the room's phones and laptops: {url}\nShare with the room there to follow."


def check_replicas(replicas: int, cpus: float) -> None:
    """Refuse, in one sentence and before the model loads, replicas that cannot be started."""
    if replicas < 0 or cpus <= 0:
        raise ValueError(f"--replicas must be 0 or more and --replica-cpus more than 0, got {replicas} and {cpus}")
    if replicas and importlib.util.find_spec("ray") is None:
        raise ValueError("--replicas needs Ray Serve: pip install -e '.[cluster]' in the clone (the cluster extra)")


def start_replicas(model: str | None, device: str, dtype: str, quantize: str, replicas: int, cpus: float) -> ModelTier:
    """The page's model tier on replicas on Ray, each sized for a room as this process's engine is (Ray is an
    optional extra, imported only here)."""
    from .cluster.start import start_replicas as on_ray

    return on_ray(model, device, dtype, quantize, replicas, cpus, ROOM_SIZE, ROOM_PREFIX_CACHE)
