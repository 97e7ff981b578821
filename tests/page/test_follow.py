"""Rooms without a browser: codes, one encoding per change, a follower's stream, the end of a room; a wrong code
on a real server."""

import asyncio
import json

import httpx
import pytest

from xlm_demo.page.follow import rooms as rooms_module
from xlm_demo.page.follow.layout import followed
from xlm_demo.page.follow.rooms import Rooms
from xlm_demo.page.follow.share import qr_svg


def read(message: bytes) -> dict:
    assert message.startswith(b"data: ") and message.endswith(b"\n\n")
    return json.loads(message.removeprefix(b"data: "))


def test_codes_are_unguessable_and_each_presenter_owns_one_room():
    rooms = Rooms(capacity=3)
    first, again, other = rooms.open("presenter-a"), rooms.open("presenter-a"), rooms.open("presenter-b")
    assert first is again and first.code != other.code
    assert len(first.code) >= 22  # 16 random bytes, URL-safe
    assert rooms.get(first.code) is first and rooms.get("guessed") is None
    rooms.open("presenter-c")
    with pytest.raises(ValueError, match="limit"):
        rooms.open("presenter-d")
    rooms.close_owned_by("presenter-a")
    assert rooms.get(first.code) is None and first.closed
    rooms.open("presenter-d")  # room again once one closed


def test_a_change_is_encoded_once_and_every_follower_gets_the_latest(monkeypatch):
    monkeypatch.setattr(rooms_module, "PRESENTER_FIRST", 0.0)
    encoded, encode = [], rooms_module.server_sent
    monkeypatch.setattr(rooms_module, "server_sent", lambda view: encoded.append(view) or encode(view))
    room = Rooms().open("presenter")

    async def follow(received: list, stop_after: int):
        async for message in room.messages():
            received.append(message)
            if len(received) == stop_after:
                return

    async def scenario():
        received = [[] for _ in range(50)]
        tasks = [asyncio.create_task(follow(r, 3)) for r in received]
        await asyncio.sleep(0.05)
        room.publish({"prompt": "Die Katze", "output": "<b>x</b>"})
        await asyncio.sleep(0.05)
        room.publish({"prompt": "Die Katze schläft"})  # what did not change is kept
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return received

    received = asyncio.run(scenario())
    assert len(encoded) == 3  # the empty view at the start, then one per change, whatever the number of followers
    for messages in received:
        assert [read(m) for m in messages] == [
            {},
            {"prompt": "Die Katze", "output": "<b>x</b>"},
            {"prompt": "Die Katze schläft", "output": "<b>x</b>"},
        ]


def test_a_closed_room_ends_every_stream_and_publishes_nothing_more(monkeypatch):
    monkeypatch.setattr(rooms_module, "PRESENTER_FIRST", 0.0)
    rooms = Rooms()
    room = rooms.open("presenter")
    room.publish({"prompt": "Hallo"})

    async def scenario():
        stream = room.messages()
        first = await anext(stream)
        rooms.close_owned_by("presenter")
        room.publish({"prompt": "after the end"})
        return first, [message async for message in stream]

    first, rest = asyncio.run(asyncio.wait_for(scenario(), 5))
    assert read(first) == {"prompt": "Hallo"}
    assert rest == [rooms_module.CLOSED]


def test_followers_are_sent_what_the_view_shows_and_a_link_of_their_own():
    state = {"prompt": "Der Hund", "appended": [7], "appended_langs": ["de"], "steps": [], "literal": False}
    skip = {"__type__": "update"}
    outputs = ("{chart}", {"__type__": "update", "choices": []}, "<div>text</div>", skip, skip, "status", state)
    sent = followed(("Der Hund", "de", 10, False), outputs)
    assert sent == {
        "chart": "{chart}",
        "output": "<div>text</div>",
        "prompt": "Der Hund",
        "lang": "de",
        "lang_name": "German",
        "explore": "?prompt=Der+Hund&lang=de&top_k=10&ids=7",
    }


def test_the_qr_code_is_an_svg_of_dark_modules():
    svg = qr_svg("http://192.168.1.20:7860/?follow=" + "x" * 22)
    assert svg.startswith("<svg") and 'viewBox="0 0 ' in svg and "<path" in svg


def test_the_route_refuses_a_code_no_room_has(server):
    assert httpx.get(f"{server}room/not-a-room/events", timeout=10).status_code == 404
