"""The view records in Chromium, sampled while they happen: an older answer never replaces a newer view, typing
while answers are slow loses nothing, and a follower's text grows token by token while the presenter continues."""

import json
import time

from tests.page.test_browser import open_demo, pytestmark, shot  # noqa: F401 (the module's marks)
from tests.page.test_talks_browser import new_page
from tests.page.waiting import wait_in_page
from xlm_demo.engine import scheduler as scheduler_module

NEW = "document.querySelectorAll('#output .tokens .tok.new').length"


def slowed_model(monkeypatch, seconds: float) -> None:
    """Every batch of the model takes `seconds` longer: a continuation long enough to watch."""
    forward = scheduler_module.Scheduler._forward

    def slow_forward(self, batch):
        time.sleep(seconds)
        return forward(self, batch)

    monkeypatch.setattr(scheduler_module.Scheduler, "_forward", slow_forward)


def test_an_older_answer_never_replaces_a_newer_view(browser, server):
    page = new_page(browser, {"width": 1280, "height": 900})
    answers = {}

    def answer_with_the_first_record(route):
        body = json.loads(route.request.post_data)
        response = route.fetch()
        answers.setdefault("first", response.text())
        if body["prompt"] == "Der Hund und":  # answered with the page's very first record, an older one
            route.fulfill(response=response, body=answers["first"])
        else:
            route.fulfill(response=response)

    page.route("**/view", answer_with_the_first_record)
    open_demo(page, server)
    box = page.locator("#prompt textarea")
    box.fill("Der Hund")
    wait_in_page(page, "() => document.querySelector('#output .tokens').innerText.includes('Hund')")
    box.fill("Der Hund und")
    page.wait_for_timeout(1000)
    assert "Hund" in page.locator("#output .tokens").inner_text()  # not "The weather in Berlin is" again
    box.fill("Der Hund und die Katze")
    wait_in_page(page, "() => document.querySelector('#output .tokens').innerText.includes('Katze')")
    page.context.close()


def test_typing_while_answers_are_slow_shows_the_latest_text(browser, server, monkeypatch):
    slowed_model(monkeypatch, 0.3)
    page = new_page(browser, {"width": 1280, "height": 900})
    open_demo(page, server)
    sent = []
    page.on("request", lambda request: sent.append(request) if request.url.endswith("/view") else None)
    box = page.locator("#prompt textarea")
    box.fill("")
    box.press_sequentially("Die Katze sitzt", delay=40)  # faster than the answers come
    wait_in_page(page, "() => document.querySelector('#output .tokens').innerText.includes('sitzt')")
    assert len(sent) < len("Die Katze sitzt")  # one request in flight: the keys typed meanwhile go as one
    assert json.loads(sent[-1].post_data)["prompt"] == "Die Katze sitzt"
    assert not page.errors, page.errors
    page.context.close()


def test_a_follower_sees_the_continuation_grow_while_it_streams(browser, server, monkeypatch):
    slowed_model(monkeypatch, 0.12)  # 24 tokens: about 3 s
    presenter = new_page(browser, {"width": 1280, "height": 800})
    open_demo(presenter, server)
    presenter.locator("#n-tokens input[type=number]").fill("24")
    presenter.locator("#n-tokens input[type=number]").press("Enter")
    presenter.locator("#share-room").click()
    address = presenter.locator("#room-link a").get_attribute("href", timeout=10_000)
    follower = new_page(browser, {"width": 400, "height": 800})
    follower.goto(address)
    follower.wait_for_selector("#candidates-plot .bars path", timeout=30_000)
    # The follower's count of chosen tokens, sampled every 50 ms in its own page while the presenter continues.
    follower.evaluate(f"() => {{ window.samples = []; setInterval(() => window.samples.push({NEW}), 50); }}")
    presenter.locator("#continue").click()
    wait_in_page(presenter, f"() => {NEW} === 24", timeout=60_000)
    wait_in_page(follower, f"() => {NEW} === 24", timeout=10_000)
    samples = follower.evaluate("() => window.samples")
    grown = [count for index, count in enumerate(samples) if index == 0 or count != samples[index - 1]]
    assert grown == sorted(grown) and len(set(grown) - {0, 24}) >= 4, grown  # several lengths on the way
    shot(follower, "follow-05-continuing")
    for page in (presenter, follower):
        assert not page.errors, page.errors
        page.context.close()
