"""The demo as a separate server process on a loopback port, for the benchmarks and the load test."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: Path, port: int, log_path: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """The demo as `make run` starts it, on a loopback port, logging to log_path, with `extra_env` added to ours."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "app.py", "--model", str(model), "--device", "cpu", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.update(extra_env or {})
    with log_path.open("w") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def wait_until_up(base: str, server: subprocess.Popen, log_path: Path, seconds: float = 180.0) -> None:
    """Poll the page until it answers; fail if the server exits or never answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}; see {log_path}")
        try:
            if httpx.get(base, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server did not answer within {seconds:.0f} s; see {log_path}")


def stop(server: subprocess.Popen) -> None:
    """End the server this run started: politely, then for sure."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
