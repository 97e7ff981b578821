"""docs/page.png from the running page: `python -m scripts.screenshot [--out PATH]`, which `make screenshot` runs.

The demo is served on the bundled model, offline, on a free loopback port; Debian's Chromium, driven through
Playwright, opens it with a German sentence under the German id, presses Step twice and waits until the chart shows
the candidates after those two tokens, as a person would see them.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium package
TEXT = "Um ein Dokument zu öffnen,"
STEPS = 2
VIEWPORT = {"width": 1280, "height": 800}
START_SECONDS = 180  # the server's start on a busy 2-core machine: imports, the model, the products timing
CHART = "#candidates-plot .bars path"  # what a person sees first: the candidates drawn


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving() -> Iterator[str]:
    """The demo on the bundled model, offline, in its own process; yields its URL and stops it after."""
    port = free_port()
    env = os.environ | {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
    command = [sys.executable, "-m", "xlm_demo", "serve", "--model", "bundled", "--device", "cpu", "--port", str(port)]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_answers(url, server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_until_answers(url: str, server: subprocess.Popen) -> None:
    """Return once the page answers; raise with the server's log if it exits or takes too long."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"the demo did not answer at {url}:\n{server.communicate(timeout=30)[1]}")


def take(url: str, out: Path) -> None:
    """Open the page, press Step, and save the viewport once the chart shows what follows the chosen tokens."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(f"{url}?prompt={quote(TEXT)}&lang=de")
        page.wait_for_selector(CHART, timeout=60_000)
        for step in range(1, STEPS + 1):
            before = page.locator("#candidates-plot").text_content()
            page.locator("#step").click()
            page.wait_for_function(  # the token shown, and the chart redrawn for the text that now ends with it
                "([count, before]) => document.querySelectorAll('#output .tokens .tok.new').length === count"
                " && document.querySelector('#candidates-plot').textContent !== before",
                arg=[step, before],
                timeout=60_000,
            )
        page.wait_for_selector(CHART)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()


def main(argv: list[str] | None = None) -> int:
    """Serve, shoot, stop; print where the picture went."""
    parser = argparse.ArgumentParser(prog="python -m scripts.screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "page.png", help="where to write the PNG")
    out = parser.parse_args(argv).out.resolve()
    with serving() as url:
        take(url, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
