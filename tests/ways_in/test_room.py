"""A room on a real server: Chromium's page records what it sends for a keystroke, a Step and a Continue; many
members replay it at once, see no error, and each is answered for the text they typed, not another member's."""

import asyncio
from pathlib import Path

import pytest

from benchmarks.room import record_requests, run_room
from tests.conftest import CHROMIUM

MEMBERS = 48

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def test_a_room_typing_at_once_sees_no_error_and_each_its_own_text(server, engine):
    recorded = record_requests(server)  # in a Chromium of its own, closed before the room's event loop runs
    assert recorded["keystroke"]["action"] == "show" and recorded["keystroke"]["prompt"].endswith(" x")
    tally = asyncio.run(run_room(server, recorded, MEMBERS, seconds=6.0, warmup=0.0))
    assert tally.errors == []
    assert len(tally.keystrokes) >= MEMBERS  # answered, however slow the machine (a time budget, not a count)
    assert sorted(tally.last_seen) == list(range(MEMBERS))
    for member, (text, record) in tally.last_seen.items():
        typed = engine.encode(text, "en").input_ids
        assert record["prompt"] == text and record["ids"][: len(typed)] == typed, f"member {member}"
