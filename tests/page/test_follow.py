"""Rooms without a browser: codes and keys, one encoding per change, a follower's stream, the end of a room, a room
no page attends, the caps per address; a wrong code on a real server."""

import asyncio
import json
import time

import httpx
import pytest

from xlm_demo.page.follow import rooms as rooms_module
from xlm_demo.page.follow.rooms import Room, Rooms
from xlm_demo.page.follow.share import link_html, qr_svg


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


def test_only_the_presenter_knows_the_key_and_the_link_carries_both():
    rooms = Rooms()
    room = rooms.open("presenter")
    assert len(room.key) >= 22 and room.key != room.code
    assert rooms.presented(room.key) is room
    assert rooms.presented(room.code) is None and rooms.presented("") is None and rooms.presented("schlüssel") is None
    shown = link_html(f"http://host/?follow={room.code}", "", "hint", room.code, room.key)
    assert shown.startswith(f'<div class="room-link" data-code="{room.code}" data-key="{room.key}">')
    rooms.close_owned_by("presenter")
    assert rooms.presented(room.key) is None


def test_one_address_holds_a_few_rooms_and_others_still_open_theirs():
    rooms = Rooms(capacity=10, per_client=2)
    first = rooms.open("script-1", "203.0.113.5")
    rooms.open("script-2", "203.0.113.5")
    assert rooms.open("script-1", "203.0.113.5") is first  # its own room again, not one more
    with pytest.raises(ValueError, match="^Your address holds 2 rooms, the most one address may; close one"):
        rooms.open("script-3", "203.0.113.5")
    assert rooms.open("speaker", "198.51.100.7").client == "198.51.100.7"
    rooms.close_owned_by("script-1")
    rooms.open("script-3", "203.0.113.5")


def wait_until(condition, seconds: float) -> float:
    """How long the condition took to hold; fails if it did not within `seconds`."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < seconds, "timed out"
        time.sleep(0.01)
    return time.monotonic() - began


def test_a_room_no_page_attends_ends_after_its_expiry():
    rooms = Rooms(expiry=0.4)
    room = rooms.open("script")
    took = wait_until(lambda: room.closed, 2.0)
    assert 0.4 <= took < 0.9 and rooms.get(room.code) is None


def test_a_room_lives_while_its_page_is_here_and_ends_after_it_left():
    rooms = Rooms(expiry=0.4)
    room = rooms.open("presenter")
    room.arrive()
    room.arrive()  # the page reconnected before its old stream was noticed gone
    time.sleep(1.0)
    room.leave()
    time.sleep(0.6)
    assert not room.closed and rooms.get(room.code) is room
    room.leave()
    took = wait_until(lambda: room.closed, 2.0)
    assert 0.4 <= took < 0.9 and rooms.get(room.code) is None


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


def test_a_late_follower_gets_the_last_whole_view_and_only_the_continuation_since():
    room = Room("code", "owner")

    def late() -> list[bytes]:
        """What a follower who arrives now is sent: each message's data."""
        return [message.split(b"data: ")[1].strip() for message in room.unseen(0)[0]]

    room.show(b'{"view":1}', whole=True)
    assert late() == [b'{"view":1}']
    room.show(b'{"continued":1}', whole=False)
    room.show(b'{"continued":2}', whole=False)
    assert late() == [b'{"view":1}', b'{"continued":2}']  # the continuation's latest record holds it all
    room.show(b'{"view":2}', whole=True)
    assert late() == [b'{"view":2}']  # the continuation before it no longer drawn after it
    room.show(b'{"continued":3}', whole=False)
    assert late() == [b'{"view":2}', b'{"continued":3}']
    _, version = room.unseen(0)
    assert room.unseen(version) == ([], version)  # a follower up to date is sent nothing again
