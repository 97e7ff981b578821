"""A room on a real server: many members typing at once through the page's own protocol see no error, and each
sees the text they typed, not another member's."""

import asyncio
import html
import re

import httpx
import pytest

from benchmarks.room import Events, run_room
from tests.conftest import serving
from xlm_demo.server import create_app

MEMBERS = 48
OUTPUT = 2  # the coloured text among a page event's outputs: chart, candidates, text, timeline, table, status, state


@pytest.fixture(scope="module")
def room_server(tiny_model):
    with serving(create_app(str(tiny_model[0]), device="cpu")) as url:
        yield url


def shown_text(coloured: str) -> str:
    """The words of the coloured text, as the page shows them."""
    tokens = re.search(r'<div class="tokens">(.*?)</div>', coloured).group(1)
    return " ".join(html.unescape(re.sub(r"<sub>.*?</sub>|<[^>]+>", "", tokens)).split())


def test_a_room_typing_at_once_sees_no_error_and_each_its_own_text(room_server):
    events = Events.from_config(httpx.get(f"{room_server}config", timeout=30).json())
    tally = asyncio.run(run_room(room_server, events, MEMBERS, seconds=6.0, warmup=0.0))
    assert tally.errors == []
    assert len(tally.keystrokes) >= MEMBERS  # answered, however slow the machine (a time budget, not a count)
    assert sorted(tally.last_seen) == list(range(MEMBERS))
    for member, (text, outputs) in tally.last_seen.items():
        # <unk> stands for characters the tiny vocabulary lacks (some digits of the member's number).
        shown = re.escape(shown_text(outputs[OUTPUT])).replace(re.escape("<unk>"), ".+?")
        assert re.fullmatch(shown, text), f"member {member} saw {shown!r}"
