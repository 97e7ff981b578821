"""A room on a real server: Chromium's page records what it sends for a keystroke, a Step and a Continue; many
members replay it at once, see no error, and each is answered for the text they typed, not another member's."""

import asyncio
from pathlib import Path

import pytest

from benchmarks.room import record_requests, run_room
from tests.conftest import serving
from tests.page.conftest import CHROMIUM
from xlm_demo.engine import Engine
from xlm_demo.server import create_app

MEMBERS = 48

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def room_server(tiny_model):
    with serving(create_app(str(tiny_model[0]), device="cpu")) as url:
        yield url


def test_a_room_typing_at_once_sees_no_error_and_each_its_own_text(room_server, tiny_model):
    recorded = record_requests(room_server)
    assert recorded["keystroke"]["action"] == "show" and recorded["keystroke"]["prompt"].endswith(" x")
    tally = asyncio.run(run_room(room_server, recorded, MEMBERS, seconds=6.0, warmup=0.0))
    assert tally.errors == []
    assert len(tally.keystrokes) >= MEMBERS  # answered, however slow the machine (a time budget, not a count)
    assert sorted(tally.last_seen) == list(range(MEMBERS))
    engine = Engine.load(str(tiny_model[0]), device="cpu")
    for member, (text, record) in tally.last_seen.items():
        typed = engine.encode(text, "en").input_ids
        assert record["prompt"] == text and record["ids"][: len(typed)] == typed, f"member {member}"
