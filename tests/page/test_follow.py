"""Rooms without a browser: codes, one encoding per change, a follower's stream, the end of a room; a wrong code
on a real server."""

import asyncio
import json

import httpx
import pytest

from xlm_demo.page.follow import rooms as rooms_module
from xlm_demo.page.follow.rooms import Rooms
from xlm_demo.page.follow.share import qr_svg


def read(message: bytes) -> tuple[str, dict]:
    """A server-sent event's kind and JSON."""
    kind, data = message.removesuffix(b"\n\n").split(b"\n")
    assert kind.startswith(b"event: ") and data.startswith(b"data: ")
    return kind.removeprefix(b"event: ").decode(), json.loads(data.removeprefix(b"data: "))


def record(text: str, spans_from: int = 1) -> bytes:
    return json.dumps({"prompt": text, "spans_from": spans_from}).encode()


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
    monkeypatch.setattr(rooms_module, "server_sent", lambda kind, data: encoded.append(data) or encode(kind, data))
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
        room.show(record("Die Katze"), whole=True)
        await asyncio.sleep(0.05)
        room.show(record("Die Katze schläft", spans_from=4), whole=False)  # a continuation's tokens since
        await asyncio.sleep(0.05)
        room.show_compare({"compare": "{}", "compare_summary": "KL"})
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return received

    received = asyncio.run(scenario())
    assert len(encoded) == 3  # one per change, whatever the number of followers
    for messages in received:
        assert [read(m) for m in messages] == [
            ("view", {"prompt": "Die Katze", "spans_from": 1}),
            ("view", {"prompt": "Die Katze schläft", "spans_from": 4}),
            ("compare", {"compare": "{}", "compare_summary": "KL"}),
        ]


def test_a_late_follower_gets_the_whole_view_before_the_continuation_since(monkeypatch):
    monkeypatch.setattr(rooms_module, "PRESENTER_FIRST", 0.0)
    room = Rooms().open("presenter")
    room.show(record("Es war"), whole=True)
    room.show(record("Es war einmal", spans_from=3), whole=False)
    room.show(record("Es war einmal ein", spans_from=3), whole=False)  # the latest holds the whole continuation

    assert [read(m)[1]["prompt"] for m in opening(room, 2)] == ["Es war", "Es war einmal ein"]
    room.show(record("Neu"), whole=True)  # a whole view: the continuation before it is not sent again
    assert [read(m)[1]["prompt"] for m in opening(room, 1)] == ["Neu"]


def opening(room, count: int) -> list[bytes]:
    """The first messages a follower who joins now is sent."""

    async def read_some():
        stream = room.messages()
        return [await anext(stream) for _ in range(count)]

    return asyncio.run(asyncio.wait_for(read_some(), 5))


def test_a_closed_room_ends_every_stream_and_publishes_nothing_more(monkeypatch):
    monkeypatch.setattr(rooms_module, "PRESENTER_FIRST", 0.0)
    rooms = Rooms()
    room = rooms.open("presenter")
    room.show(record("Hallo"), whole=True)

    async def scenario():
        stream = room.messages()
        first = await anext(stream)
        rooms.close_owned_by("presenter")
        room.show(record("after the end"), whole=True)
        return first, [message async for message in stream]

    first, rest = asyncio.run(asyncio.wait_for(scenario(), 5))
    assert read(first) == ("view", {"prompt": "Hallo", "spans_from": 1})
    assert rest == [rooms_module.CLOSED]


def test_only_the_presenters_key_opens_a_room_to_its_views():
    rooms = Rooms()
    room = rooms.open("presenter")
    assert rooms.presented(room.key) is room
    assert rooms.presented(room.code) is None  # a follower's code shows nothing to the room
    assert room.key != room.code and len(room.key) >= 22


def test_the_qr_code_is_an_svg_of_dark_modules():
    svg = qr_svg("http://192.168.1.20:7860/?follow=" + "x" * 22)
    assert svg.startswith("<svg") and 'viewBox="0 0 ' in svg and "<path" in svg


def test_the_route_refuses_a_code_no_room_has(server):
    assert httpx.get(f"{server}room/not-a-room/events", timeout=10).status_code == 404
