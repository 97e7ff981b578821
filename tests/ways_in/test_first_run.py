"""The first run as a user meets it: the real huggingface_hub client downloading through the demo's own loading.

A local server speaks the hub's download protocol (tests/hub_server.py) and HF_ENDPOINT points at it; each run is a
fresh `python -m xlm_demo` process, since huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE on import.
"""

import fcntl
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from tests.checkpoints import write_hub_checkpoint
from tests.hub_server import Hub, HubServer
from xlm_demo.engine import Engine
from xlm_demo.model.checkpoint import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[2]
REPO, BIN_REPO = "test-org/xlm-tiny", "test-org/xlm-tiny-bin"
NEEDED = {"config.json", "vocab.json", "merges.txt", "tokenizer_config.json"}
TEXT = "The weather in Berlin is"
# The page `make run` builds without --model, and the banner it shows.
BANNER = """
import logging, sys
from xlm_demo.server import create_app
logging.basicConfig(level=logging.INFO, format="note: %(message)s")
demo = create_app(None, device="cpu")
print("\\n".join(block.value for block in demo.blocks.values() if getattr(block, "elem_id", None) == "notice"))
"""


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    """Two hub repositories: one with safetensors (and files the demo never reads), one with only the .bin."""
    safetensors, bin_only = tmp_path_factory.mktemp("repo"), tmp_path_factory.mktemp("repo-bin")
    write_hub_checkpoint(safetensors)
    write_hub_checkpoint(bin_only, weights="bin", seed=1)
    shutil.copy(bin_only / "pytorch_model.bin", safetensors / "pytorch_model.bin")  # the hub keeps both
    (safetensors / "tf_model.h5").write_bytes(b"\0" * 4096)
    (safetensors / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n", encoding="utf-8")
    return {REPO: safetensors, BIN_REPO: bin_only}


@pytest.fixture
def hub(repos):
    """A fresh server holding the repositories, and its URL."""
    state = Hub(repos=dict(repos))
    with HubServer(state) as url:
        state.url = url
        yield state


def run(hub: Hub, hf_home: Path, *args: str, offline: bool = False, page: bool = False) -> subprocess.CompletedProcess:
    """`python -m xlm_demo predict -v --json ...` with HF_ENDPOINT on the local hub and its own HF_HOME.

    With `page`, the process builds the page as `make run` does instead, and prints its banner.

    Its stderr is a terminal, as a user's is: huggingface_hub shows its progress bars only on one.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "TQDM"))}
    env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(hf_home), "HF_HUB_DISABLE_TELEMETRY": "1"}
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    command = [sys.executable, "-m", "xlm_demo", "predict", "-v", "--json", "--device", "cpu", "--top-k", "5"]
    command = [sys.executable, "-c", BANNER] if page else [*command, *args, TEXT]
    terminal, stderr = pty.openpty()
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns, as a window has
    chunks = []
    reader = threading.Thread(target=read_all, args=(terminal, chunks), daemon=True)
    reader.start()
    try:
        result = subprocess.run(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, timeout=180, check=False
        )
    finally:
        os.close(stderr)
        reader.join(timeout=10)
        os.close(terminal)
    text = b"".join(chunks).decode("utf-8", errors="replace").replace("\r\n", "\n")
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), text)


def read_all(fd: int, chunks: list[bytes]) -> None:
    """Everything written to a pseudo-terminal until its other end closes."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other end is closed
            return
        if not chunk:
            return
        chunks.append(chunk)


def prediction(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_same(a: dict, b: dict) -> None:
    """The same ids and candidates, probabilities within float32 rounding (each process times its product library)."""
    assert a["input_ids"] == b["input_ids"]
    assert [c["id"] for c in a["candidates"]] == [c["id"] for c in b["candidates"]]
    assert max(abs(x["prob"] - y["prob"]) for x, y in zip(a["candidates"], b["candidates"], strict=True)) < 1e-5


def test_first_run_downloads_only_what_it_reads_then_runs_offline_from_the_cache(hub, repos, tmp_path):
    first = run(hub, tmp_path, "--model", REPO)
    expected = Engine.load(str(repos[REPO]), device="cpu").predict(TEXT, "en", top_k=5)
    assert [c["id"] for c in prediction(first)["candidates"]] == [c.id for c in expected.candidates]
    assert sorted(hub.gets()) == sorted({*NEEDED, "model.safetensors"})  # not the .bin, .h5 or README
    assert not any(path.startswith("/api/") for _, path in hub.requests)
    hub_cache = tmp_path / "hub"
    assert f"downloading {REPO} from {hub.url} into {hub_cache}" in first.stderr
    assert f"{REPO} is in {hub_cache}/models--test-org--xlm-tiny/snapshots/" in first.stderr
    assert "model.safetensors: 100%" in first.stderr  # huggingface_hub's own progress bar

    before = len(hub.requests)
    second = run(hub, tmp_path, "--model", REPO, offline=True)
    assert_same(prediction(second), prediction(first))
    assert len(hub.requests) == before  # not one request
    assert "downloading" not in second.stderr


def test_a_repository_without_safetensors_falls_back_to_the_bin(hub, repos, tmp_path):
    first = run(hub, tmp_path, "--model", BIN_REPO)
    expected = Engine.load(str(repos[BIN_REPO]), device="cpu").predict(TEXT, "en", top_k=5)
    got = prediction(first)["candidates"]
    assert [c["id"] for c in got] == [c.id for c in expected.candidates]
    assert max(abs(c["prob"] - e.prob) for c, e in zip(got, expected.candidates, strict=True)) < 1e-5
    assert sorted(hub.gets()) == sorted({*NEEDED, "pytorch_model.bin"})
    assert f"{BIN_REPO} has no model.safetensors: reading pytorch_model.bin with weights_only=True" in first.stderr

    before = len(hub.requests)
    assert_same(prediction(run(hub, tmp_path, "--model", BIN_REPO, offline=True)), prediction(first))
    assert len(hub.requests) == before


def test_an_interrupted_download_is_one_sentence_and_the_next_run_finishes_it(hub, tmp_path):
    hub.cut.add("model.safetensors")
    broken = run(hub, tmp_path, "--model", REPO)
    assert broken.returncode == 2
    assert "Traceback" not in broken.stderr
    last = broken.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the download of {REPO} from {hub.url} failed (")
    assert last.endswith(f"run again to finish it: the files already complete stay in {tmp_path / 'hub'}")
    assert not list((tmp_path / "hub").rglob("*.incomplete"))  # no half file left to be mistaken for a whole one

    hub.cut.clear()
    hub.down = False
    hub.requests.clear()
    assert prediction(run(hub, tmp_path, "--model", REPO))["candidates"]
    assert hub.gets() == ["model.safetensors"]  # the small files were complete and are not fetched again


def test_a_repository_that_does_not_exist_is_one_sentence(hub, tmp_path):
    result = run(hub, tmp_path, "--model", "test-org/no-such-model")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: test-org/no-such-model is not a model repository on {hub.url} (or it is private or gated)"
    )


def test_the_default_model_missing_gives_the_bundled_one_with_its_banner(hub, tmp_path):
    result = run(hub, tmp_path, page=True)  # no --model: the real checkpoint, which this hub does not hold
    assert result.returncode == 0, result.stderr
    banner = f"Running the small bundled model: {DEFAULT_MODEL} could not be loaded here. The server's log says why"
    assert result.stdout.startswith(f"⚠️ {banner} and how to get it.")  # short, and no path of this computer
    logged = f"Running the small bundled model, not {DEFAULT_MODEL}: {DEFAULT_MODEL} is not a model repository on"
    assert f"{logged} {hub.url}" in result.stderr and "serving bundled: xlm-mini-ende" in result.stderr  # the log
    assert hub.gets() == []  # the HEAD for its config said it is not there; nothing was fetched


def test_the_notice_command_run_as_printed_fetches_the_five_files_and_the_real_model_answers(hub, repos, tmp_path):
    hub.repos[DEFAULT_MODEL] = repos[REPO]  # a stand-in for the real one, with files the demo never reads
    stand_in = run(hub, tmp_path, offline=True)  # no --model, offline, nothing cached: the bundled model, and why
    notice = next(line for line in stand_in.stderr.splitlines() if "Running the small bundled model" in line)
    command = notice.split("For the real one, run once with network access, or: ", 1)[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "VIRTUAL_ENV"))}
    env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}  # no venv on the PATH
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fetched = subprocess.run(command, shell=True, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert fetched.returncode == 0, fetched.stderr
    assert sorted(hub.gets()) == sorted({*NEEDED, "model.safetensors"})  # not the .bin, .h5 or README

    real = run(hub, tmp_path, offline=True)
    assert "bundled" not in real.stderr
    expected = Engine.load(str(repos[REPO]), device="cpu").predict(TEXT, "en", top_k=5)
    assert [c["id"] for c in prediction(real)["candidates"]] == [c.id for c in expected.candidates]
