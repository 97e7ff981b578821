"""Test-wide set-up: no network, no telemetry, a private Hugging Face cache; the checkpoints, the engine, the
reference model, and every server the suite starts, each made once for as many tests as can share it."""

import os
import shutil
import tempfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="xlm-demo-hf-home-")  # never the user's cache

from contextlib import contextmanager

import pytest
from gradio_client import Client

from benchmarks.server_process import free_port
from tests.checkpoints import ENFR, write_hub_checkpoint

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's: no browser is downloaded
# The servers whose rooms end sooner than the default 55 s, so that a test can watch one end: seconds.
HOSTILE_EXPIRY = 5.0  # every other cap as served
LIMITED_EXPIRY = 2.0  # with small caps of its own (limited_rooms)
PROXY = "127.0.0.2"  # the proxied server's trusted proxy; the other loopback addresses reach it directly
BUSY_ROOM = 2  # the busy server's room: events running sessions at once
BUSY_WAITING_ROOM = 1  # the busy server's queue: one request may wait while BUSY_ROOM run


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A random-weight checkpoint in the hub layout, and the reference model holding its weights."""
    folder = tmp_path_factory.mktemp("tiny-model")
    return folder, write_hub_checkpoint(folder)


@pytest.fixture(scope="session")
def reference(tiny_model):
    """transformers' XLMWithLMHeadModel (causal=True) holding the tiny checkpoint's weights; no test changes it."""
    return tiny_model[1]


@pytest.fixture(scope="session")
def engine(tiny_model):
    """An Engine on the tiny checkpoint for the whole session. Safe to share: what it answers does not depend on what
    its prefix cache holds (cached equals uncached, tests/engine/test_prefix_cache.py) or on which thread asks. A
    test that watches the cache or the scheduler itself takes `fresh_engine`; one that sets a field of it sets it
    through monkeypatch, which puts it back."""
    from xlm_demo.engine import Engine

    return Engine.load(str(tiny_model[0]), device="cpu")


@pytest.fixture
def fresh_engine(tiny_model):
    """An Engine on the tiny checkpoint of the test's own, function-scoped: for tests that replace its scheduler's
    forward pass or count what its prefix cache holds from empty."""
    from xlm_demo.engine import Engine

    return Engine.load(str(tiny_model[0]), device="cpu")


@pytest.fixture(scope="session")
def bundled_engine():
    """An Engine on the bundled model (assets/xlm-mini-ende) for the whole session, shared as `engine` is."""
    from xlm_demo.engine import Engine
    from xlm_demo.model.checkpoint import BUNDLED_MODEL

    if not (BUNDLED_MODEL / "config.json").is_file():
        pytest.skip("assets/xlm-mini-ende is not built yet (make bundled-model)")
    return Engine.load(str(BUNDLED_MODEL), device="cpu")


@pytest.fixture(scope="session")
def enfr_model(tmp_path_factory):
    """An English/French checkpoint (en = 0, fr = 1, as xlm-clm-enfr-1024 numbers them) and its reference."""
    folder = tmp_path_factory.mktemp("enfr")
    return folder, write_hub_checkpoint(folder, lang2id=ENFR)


@contextmanager
def serving(demo, host: str = "127.0.0.1"):
    """A queued Blocks launched as the demo launches, on a free port of `host`; yields its loopback URL, closes
    after."""
    from xlm_demo.server import launch_options

    options = launch_options(host, free_port(), share=False)
    demo.launch(**options, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{options['server_port']}/"
    finally:
        demo.close()


@contextmanager
def demo_on(folder, host: str = "127.0.0.1", **options):
    """The demo on the checkpoint in `folder`, created as `serve` creates it (`options` as create_app takes them)
    and served on `host`; yields its loopback URL."""
    from xlm_demo.server import create_app

    with serving(create_app(str(folder), device="cpu", **options), host) as url:
        yield url


@pytest.fixture(scope="session")
def server(tiny_model):
    """The real demo on the tiny checkpoint for the whole session, with every limit as served; yields its URL.
    Tests that open rooms close them, and no test changes its limits."""
    with demo_on(tiny_model[0]) as url:
        yield url


@pytest.fixture(scope="module")
def network_server(tiny_model):
    """The demo listening on every interface, as `make talk` starts it; yields the loopback URL a presenter on the
    same machine opens."""
    with demo_on(tiny_model[0], host="0.0.0.0") as url:
        yield url


@pytest.fixture(scope="session")
def api(server):
    """A gradio_client of the session's server."""
    return Client(server, verbose=False)


@pytest.fixture(scope="session")
def enfr_server(enfr_model):
    """The demo on the English/French checkpoint."""
    with demo_on(enfr_model[0]) as url:
        yield url


@pytest.fixture(scope="session")
def quoting_server(tmp_path_factory):
    """The demo on a checkpoint whose next tokens after a quote mark are known (tests/page/quoting_model.py)."""
    from tests.page.quoting_model import write_quoting_checkpoint

    folder = tmp_path_factory.mktemp("quoting")
    write_quoting_checkpoint(folder)
    with demo_on(folder) as url:
        yield url


@pytest.fixture(scope="session")
def quoting_api(quoting_server):
    """A gradio_client of the quoting server."""
    return Client(quoting_server, verbose=False)


@pytest.fixture(scope="module")
def bundled_server():
    """The demo on the bundled model (assets/xlm-mini-ende), every limit as served; yields its URL."""
    from xlm_demo.model.checkpoint import BUNDLED_MODEL

    with demo_on(BUNDLED_MODEL) as url:
        yield url


@pytest.fixture(scope="module")
def busy_server():
    """The demo on the bundled model, whose 256-token continuations take seconds, with a room of BUSY_ROOM and a
    queue of BUSY_WAITING_ROOM. Module-scoped: its tests fill the queue and the room."""
    from xlm_demo.model.checkpoint import BUNDLED_MODEL

    with demo_on(BUNDLED_MODEL, queue_size=BUSY_WAITING_ROOM, room_size=BUSY_ROOM) as url:
        yield url


@pytest.fixture
def busy_api(busy_server):
    """A gradio_client of the busy server, a session of its own for each test."""
    return Client(busy_server, verbose=False)


@pytest.fixture(scope="module")
def hostile_rooms():
    """The hostile server's rooms: every cap as served, rooms no page attends ending after HOSTILE_EXPIRY s."""
    from xlm_demo.page.follow.rooms import Rooms

    return Rooms(expiry=HOSTILE_EXPIRY)


@pytest.fixture(scope="module")
def hostile_server(tiny_model, hostile_rooms):
    """The demo whose rooms a script fills from one address. Module-scoped: the rooms it leaves would take other
    tests' places."""
    with demo_on(tiny_model[0], rooms=hostile_rooms) as url:
        yield url


def limited_rooms():
    """Small caps: 2 rooms and 2 followers' streams an address (4 on the server), 5 requests a second (bursts of
    30), and rooms no page attends ending after LIMITED_EXPIRY s."""
    from xlm_demo.page.clients import RateLimit, Slots
    from xlm_demo.page.follow.rooms import Rooms

    return Rooms(
        per_client=2,
        expiry=LIMITED_EXPIRY,
        followers=Slots(per_client=2, total=4, what="followers' streams"),
        requests=RateLimit(per_second=5, burst=30),
    )


@pytest.fixture(scope="module")
def limited_server(tiny_model):
    """The demo with limited_rooms(), behind a proxy on the same machine (the default trusted proxy).
    Module-scoped: its tests use up its caps."""
    with demo_on(tiny_model[0], rooms=limited_rooms()) as url:
        yield url


@pytest.fixture(scope="module")
def proxied_server(tiny_model):
    """The demo with limited_rooms() behind a proxy at PROXY; the other loopback addresses are clients that reach
    it directly (Gradio's server rewrites only 127.0.0.1's requests itself). Module-scoped, as limited_server."""
    from xlm_demo.page.clients import TrustedProxies

    with demo_on(tiny_model[0], rooms=limited_rooms(), proxies=TrustedProxies.parse(PROXY)) as url:
        yield url
