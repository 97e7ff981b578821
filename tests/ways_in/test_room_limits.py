"""Rooms against scripts, on a real server through Gradio's own protocol (as a script sends the page's Share): rooms
no page attends end, the presenter's presence keeps one, and each address's caps answer with one sentence."""

import asyncio
import json
import re
import time
import uuid

import httpx

from benchmarks.follow import gradio_event, share_event
from tests.conftest import LIMITED_EXPIRY, PROXY
from xlm_demo.page.clients import TOO_FAST
from xlm_demo.page.follow.rooms import FOLLOWERS_PER_CLIENT

HALL = 2_000  # people following a talk from behind one address (a conference's Wi-Fi)
ROOMS_CAPPED = "Your address holds 2 rooms, the most one address may; close one of them first."
DIRECT, ANOTHER = "127.0.0.3", "127.0.0.4"  # two clients' own addresses, reaching the proxied server without its proxy


async def share_from(base: str, event: tuple, address: str, peer: str) -> tuple[str | None, str | None, str | None]:
    """Share with the room from a session of its own and no page, from the local address `peer` with `address` as
    its X-Forwarded-For: the error, or the room's code and presenter's key."""
    transport = httpx.AsyncHTTPTransport(local_address=peer)
    async with httpx.AsyncClient(timeout=60, headers={"X-Forwarded-For": address}, transport=transport) as client:
        error, outputs = await gradio_event(client, base, uuid.uuid4().hex, event)
    if error:
        return error, None, None
    found = re.search(r'data-code=\\"([\w-]+)\\" data-key=\\"([\w-]+)\\"', json.dumps(outputs))
    return None, found.group(1), found.group(2)


def scripted_shares(base: str, addresses: list[str], peer: str = "127.0.0.1") -> list[tuple]:
    """One Share per address in the list (an address may come again), all at once, each from the local `peer`:
    (error, code, key) each."""
    event = share_event(httpx.get(f"{base}config", timeout=30).json())

    async def every():
        return await asyncio.gather(*(share_from(base, event, address, peer) for address in addresses))

    return asyncio.run(every())


def is_open(base: str, code: str) -> bool:
    with httpx.stream("GET", f"{base}room/{code}/events", timeout=10) as response:
        return response.status_code == 200


def test_one_address_opens_a_few_rooms_and_is_told_why_not_more(limited_server):
    results = scripted_shares(limited_server, ["203.0.113.1"] * 10)
    codes = [code for error, code, _ in results if code]
    assert len(codes) == 2 and all(is_open(limited_server, code) for code in codes)
    errors = {error for error, _, _ in results if error}
    assert errors == {ROOMS_CAPPED}


def test_entries_a_script_writes_before_its_proxys_get_it_no_more_than_its_address(proxied_server):
    # The proxy appends the address it saw; whatever the client wrote comes before it.
    results = scripted_shares(proxied_server, [f"10.{n}.{n}.1, 203.0.113.20" for n in range(70)], peer=PROXY)
    assert len([code for _, code, _ in results if code]) == 2
    assert ROOMS_CAPPED in {error for error, _, _ in results} <= {None, ROOMS_CAPPED, TOO_FAST}
    assert (
        scripted_shares(proxied_server, ["203.0.113.21"], peer=PROXY)[0][1] is not None
    )  # another address is not held


def test_from_a_peer_that_is_no_trusted_proxy_a_made_up_header_is_ignored(proxied_server):
    results = scripted_shares(proxied_server, [f"203.0.113.{n}" for n in range(70)], peer=DIRECT)
    [(_, code, _), _] = [result for result in results if result[1]]
    assert ROOMS_CAPPED in {error for error, _, _ in results} <= {None, ROOMS_CAPPED, TOO_FAST}
    transport = httpx.HTTPTransport(local_address=ANOTHER)  # an address whose requests so far are none
    with httpx.Client(timeout=30, transport=transport) as client:
        opened = [client.send(client.build_request("GET", f"{proxied_server}room/{code}/events",
                                                   headers={"X-Forwarded-For": f"198.51.100.{n}"}), stream=True)
                  for n in range(3)]  # fmt: skip
        assert [response.status_code for response in opened] == [200, 200, 429]  # two per address: one address
        assert opened[2].read().decode().startswith("Your address holds 2 followers' streams")
        for response in opened:
            response.close()


def test_a_room_no_page_attends_ends_within_its_expiry_and_its_followers_are_told(limited_server):
    began = time.monotonic()  # the room's expiry runs from its opening, within the share
    [(_, code, _)] = scripted_shares(limited_server, ["203.0.113.2"])
    with httpx.stream("GET", f"{limited_server}room/{code}/events", timeout=30) as follower:
        assert follower.status_code == 200  # a room that has shown nothing yet sends nothing until it ends
        assert "event: closed" in list(follower.iter_lines())  # and the stream ends
    assert LIMITED_EXPIRY <= time.monotonic() - began < LIMITED_EXPIRY + 1.5
    assert not is_open(limited_server, code)


def test_the_presenters_presence_keeps_its_room_and_only_the_key_is_let_in(limited_server):
    [(_, code, key), (_, other_code, _)] = scripted_shares(limited_server, ["203.0.113.3", "203.0.113.4"])
    presence = f"{limited_server}room/{code}/presence"
    for wrong in [
        f"{presence}?key={code}",
        f"{presence}?key=",
        f"{limited_server}room/{other_code}/presence?key={key}",
    ]:
        assert httpx.get(wrong, timeout=10).status_code == 404
    with httpx.stream("GET", f"{presence}?key={key}", timeout=30) as held:
        assert held.status_code == 200
        time.sleep(2 * LIMITED_EXPIRY)
        assert is_open(limited_server, code) and not is_open(limited_server, other_code)
    left = time.monotonic()
    while is_open(limited_server, code):
        assert time.monotonic() - left < LIMITED_EXPIRY + 1.5, "the room outlived its page"
        time.sleep(0.1)


def test_followers_streams_are_capped_per_address_and_on_the_server_and_given_back(limited_server):
    [(_, code, key)] = scripted_shares(limited_server, ["203.0.113.5"])
    events = f"{limited_server}room/{code}/events"

    def follow(address: str) -> httpx.Response:
        client = httpx.Client(timeout=30, headers={"X-Forwarded-For": address})
        return client.send(client.build_request("GET", events), stream=True)

    with httpx.stream("GET", f"{limited_server}room/{code}/presence?key={key}", timeout=30):
        first, second, other = follow("198.51.100.1"), follow("198.51.100.1"), follow("198.51.100.2")
        assert [first.status_code, second.status_code, other.status_code] == [200, 200, 200]
        too_many = follow("198.51.100.1")
        assert (too_many.status_code, too_many.read().decode()) == (
            429,
            "Your address holds 2 followers' streams, the most one address may; close some.",
        )
        fourth, full = follow("198.51.100.3"), follow("198.51.100.4")
        assert fourth.status_code == 200 and (full.status_code, full.read().decode()) == (
            503,
            "The server holds 4 followers' streams, its limit; try again later.",
        )
        first.close()
        deadline = time.monotonic() + 5
        while (again := follow("198.51.100.1")).status_code != 200:  # once the server saw the stream end
            assert time.monotonic() < deadline, "a closed stream was never given back"
            time.sleep(0.1)
        for response in (second, other, fourth, again):
            response.close()


def test_too_many_requests_from_one_address_are_told_to_wait(limited_server):
    with httpx.Client(timeout=10, headers={"X-Forwarded-For": "198.51.100.9"}) as client:
        answers = [client.get(f"{limited_server}room/no-such-room/events") for _ in range(40)]
    assert {answer.status_code for answer in answers[:30]} == {404}
    assert answers[-1].status_code == 429 and answers[-1].text == TOO_FAST
    with httpx.Client(timeout=10, headers={"X-Forwarded-For": "198.51.100.10"}) as client:
        assert (
            client.get(f"{limited_server}room/no-such-room/events").status_code == 404
        )  # another address is not held up


def test_a_hall_behind_one_address_follows_the_talk(server):
    """HALL followers' streams from one address all open, and all see the presenter's next view."""
    assert FOLLOWERS_PER_CLIENT >= HALL
    [(_, code, key)] = scripted_shares(server, ["203.0.113.30"])
    hall = {"X-Forwarded-For": "198.51.100.200"}

    async def follow(client: httpx.AsyncClient, opened: list[int]) -> str | None:
        async with client.stream("GET", f"{server}room/{code}/events", headers=hall) as stream:
            opened.append(stream.status_code)
            if stream.status_code != 200:
                return None
            async for line in stream.aiter_lines():
                if line.startswith("data: ") and '"prompt"' in line:
                    return json.loads(line.removeprefix("data: "))["prompt"]
        return None

    async def talk() -> tuple[list[int], list[str | None], int]:
        limits = httpx.Limits(max_connections=HALL + 10, max_keepalive_connections=HALL + 10)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            opened: list[int] = []
            followers = [asyncio.create_task(follow(client, opened)) for _ in range(HALL)]
            while len(opened) < HALL:
                await asyncio.sleep(0.05)
            word = {"prompt": "Welcome to the hall", "lang": "en", "room": key}
            said = await client.post(f"{server}view", json=word, headers={"X-Forwarded-For": "203.0.113.30"})
            return opened, await asyncio.gather(*followers), said.status_code

    opened, seen, said = asyncio.run(talk())
    assert said == 200 and opened == [200] * HALL
    assert seen == ["Welcome to the hall"] * HALL


def test_the_page_routes_request_rate_is_counted_per_address_behind_the_proxy(proxied_server):
    transport = httpx.HTTPTransport(local_address=PROXY)
    bad_json = {"Content-Type": "application/json"}
    with httpx.Client(timeout=30, transport=transport) as client:
        for _ in range(5_000):  # the burst, then what refills while these are sent
            answer = client.post(
                f"{proxied_server}view", content=b"{", headers={**bad_json, "X-Forwarded-For": "198.51.100.41"}
            )
            if answer.status_code == 429:
                break
        assert answer.status_code == 429 and answer.text == TOO_FAST
        other = client.post(
            f"{proxied_server}view", content=b"{", headers={**bad_json, "X-Forwarded-For": "198.51.100.42"}
        )
        assert other.status_code == 400  # another address behind the same proxy is not held up
