"""Test-wide set-up: no network, no telemetry, a private Hugging Face cache; shared checkpoints and servers."""

import os
import tempfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="xlm-demo-hf-home-")  # never the user's cache

from contextlib import contextmanager

import pytest

from benchmarks.server_process import free_port
from tests.checkpoints import write_hub_checkpoint


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A random-weight checkpoint in the hub layout, and the reference model holding its weights."""
    folder = tmp_path_factory.mktemp("tiny-model")
    return folder, write_hub_checkpoint(folder)


@contextmanager
def serving(demo):
    """A queued Blocks launched as the demo launches, on a free loopback port; yields its URL, closes after."""
    from xlm_demo.server import launch_options

    options = launch_options("127.0.0.1", free_port(), share=False)
    demo.launch(**options, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{options['server_port']}/"
    finally:
        demo.close()


@pytest.fixture(scope="session")
def server(tiny_model):
    """The real demo, launched on a free loopback port for the whole session; yields its URL."""
    from xlm_demo.server import create_app

    with serving(create_app(str(tiny_model[0]), device="cpu")) as url:
        yield url
