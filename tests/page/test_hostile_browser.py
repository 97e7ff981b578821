"""Hostile use, in Debian's Chromium: a script without a page sends Share from 70 sessions of one address through
Gradio's own protocol; a presenter can still share and be followed, and keeps the room while the page is here, well
past the time the script's rooms end in."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import serving
from tests.page.test_browser import pytestmark  # noqa: F401 (the module's marks)
from tests.page.test_follow import wait_until
from tests.page.test_talks_browser import new_page, open_demo, shows_text
from tests.page.waiting import wait_in_page
from tests.ways_in.test_room_limits import is_open, scripted_shares
from xlm_demo.page.follow.rooms import ROOMS_PER_CLIENT, Rooms
from xlm_demo.server import create_app

EXPIRY = 5.0  # seconds a room no page attends lives on this server (55 by default); every cap as served
ONE_ADDRESS = f"Your address holds {ROOMS_PER_CLIENT} rooms, the most one address may; close one of them first."


@pytest.fixture(scope="module")
def rooms():
    return Rooms(expiry=EXPIRY)


@pytest.fixture(scope="module")
def hostile_server(tiny_model, rooms):
    with serving(create_app(str(tiny_model[0]), device="cpu", rooms=rooms)) as url:
        yield url


def scripts(base: str, addresses: list[str]) -> list:
    """scripted_shares in a thread of its own: Playwright holds this one's event loop."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(scripted_shares, base, addresses).result()


def test_a_scripts_rooms_leave_a_presenter_room_to_share_be_followed_and_stay(browser, hostile_server, rooms):
    presenter = new_page(browser, {"width": 1280, "height": 800})
    open_demo(presenter, hostile_server)
    scripted = scripts(hostile_server, ["203.0.113.66"] * 70)
    scripts_done = time.monotonic()
    assert {error for error, _, _ in scripted if error} == {ONE_ADDRESS}
    opened = [code for _, code, _ in scripted if code]
    assert sum(map(lambda code: is_open(hostile_server, code), opened)) <= ROOMS_PER_CLIENT  # those not yet ended

    presenter.locator("#share-room").click()  # from the script's machine too, but an address of its own
    link = presenter.locator("#room-link .room-link")
    address = link.locator("a").get_attribute("href", timeout=10_000)
    room = rooms.presented(link.get_attribute("data-key"))
    assert room is not None and link.get_attribute("data-code") == room.code and address.endswith(room.code)
    follower = new_page(browser, {"width": 400, "height": 800})
    follower.goto(address)
    follower.wait_for_selector("#candidates-plot .bars path", timeout=30_000)
    wait_until(lambda: room.present == 1, 5.0)  # presence.js holds the room's presence stream

    time.sleep(max(2 * EXPIRY, scripts_done + EXPIRY + 1.5 - time.monotonic()))
    assert not [code for code in opened if is_open(hostile_server, code)]  # unattended, the script's rooms ended
    for text in ["Die Katze schläft", "Der Hund bellt laut"]:  # attended, the presenter's lives on
        presenter.locator("#prompt textarea").fill(text)
        shows_text(follower, text)
    presenter.locator("#close-room").click()
    wait_in_page(follower, "() => document.body.classList.contains('room-ended')", timeout=10_000)
    wait_until(lambda: room.present == 0, 5.0)  # the page let the closed room's presence stream go
    for page in (presenter, follower):
        assert not [error for error in page.errors if "404" not in error], page.errors  # the closed room's: 404
        page.context.close()
