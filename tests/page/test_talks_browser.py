"""For talks, in Debian's Chromium: a presenter and three followers, each in a browser of their own; presenter mode
on a 1280×720 projector; figures for slides (SVG, and the view as an HTML file that opens offline)."""

import itertools
from urllib.parse import quote

import httpx
import pytest

from tests.page.conftest import new_page
from tests.page.test_browser import (  # noqa: F401 (the module's marks)
    no_error_toasts,
    open_demo,
    plot_labels,
    pytestmark,
    shot,
    shows_prediction,
)
from tests.page.waiting import wait_in_page

FOLLOWER_SCREENS = [{"width": 400, "height": 800}, {"width": 1280, "height": 800}, {"width": 800, "height": 1000}]


def shows_text(page, text):
    wait_in_page(
        page,
        "text => document.querySelector('#prompt textarea').value === text"
        " && document.querySelector('#output .tokens')?.innerText.includes(text.split(' ').at(-1))",
        arg=text,
        timeout=10_000,
    )


def chosen(page):
    return page.locator("#output .tokens .tok.new").count()


# A known fault, not yet understood: with a follower narrower than a desktop in the room, the presenter's Continue
# sometimes never shows its tokens or its click is never taken, and a renderer of the browser runs away (seen growing
# to 7 GB), which then hangs the suite. Alone, these tests pass.
CONTINUE_WITH_A_NARROW_FOLLOWER = "a known fault: Continue with a narrow follower can make a renderer run away"


@pytest.mark.skip(reason=CONTINUE_WITH_A_NARROW_FOLLOWER)
def test_three_followers_see_the_presenter_live_and_one_explores_alone(browser, server, api):
    presenter = new_page(browser, {"width": 1280, "height": 800})
    open_demo(presenter, server)
    presenter.locator("#share-room").click()
    link = presenter.locator("#room-link a")
    link.wait_for(timeout=10_000)
    address = link.get_attribute("href")
    code = address.split("follow=")[1]
    assert len(code) >= 22 and presenter.locator("#room-link svg path").count() == 1  # 128 bits; the QR code drawn
    shot(presenter, "follow-01-shared")

    followers = [new_page(browser, screen) for screen in FOLLOWER_SCREENS]
    for follower in followers:
        follower.goto(address)
        follower.wait_for_selector("#candidates-plot .bars path", timeout=30_000)
        assert not follower.locator("#step").is_visible() and not follower.locator("#continue").is_visible()

    text = "Die Katze schläft auf dem Sofa"
    presenter.locator("#prompt textarea").fill(text)
    presenter.locator("#lang label", has_text="German").click()
    expected = api.predict(prompt=text, lang="de", top_k=10, api_name="/predict")
    shows_prediction(presenter, expected)
    for follower in followers:
        shows_text(follower, text)
        shows_prediction(follower, expected)  # the same candidates, probabilities and entropy
    presenter.locator("#header").click()
    presenter.keyboard.press("ArrowRight")
    wait_in_page(presenter, "() => document.querySelectorAll('#output .tokens .tok.new').length === 1")
    first = presenter.locator("#output .tokens .tok.new").inner_text()
    for follower in followers:
        wait_in_page(follower, "() => document.querySelectorAll('#output .tokens .tok.new').length === 1")
        assert follower.locator("#output .tokens .tok.new").inner_text() == first
    presenter.locator("#continue").click()  # 12 tokens, streamed
    wait_in_page(presenter, "() => document.querySelectorAll('#output .tokens .tok.new').length === 13", timeout=60_000)
    continued = presenter.locator("#output .tokens").inner_text()
    for follower in followers:
        wait_in_page(follower, "() => document.querySelectorAll('#output .tokens .tok.new').length === 13")
        assert follower.locator("#output .tokens").inner_text() == continued
    presenter.locator("#compare").click()  # the open section's view
    presenter.wait_for_selector("#compare-plot .bars path", timeout=30_000)
    kl = presenter.locator("#compare-plot .gtitle").text_content()
    for follower in followers:
        follower.wait_for_selector("#compare-plot .bars path", timeout=10_000)
        shown = follower.locator("#compare-plot .gtitle").text_content()
        assert shown.replace(" ", "") == kl.replace(" ", "")  # on a phone, wrapped into lines
        assert "KL(" in follower.locator("#compare-summary").inner_text()
    shot(followers[0], "follow-02-phone")
    shot(followers[1], "follow-03-laptop")

    followers[0].keyboard.press("ArrowRight")  # a follower's keys do nothing to the presenter's page
    explorer = followers[2]
    explorer.locator("#leave-room").click()
    explorer.wait_for_selector("#step", state="visible", timeout=30_000)
    shows_text(explorer, text)  # its own session, from the presenter's text and chosen token
    assert "follow=" not in explorer.url
    wait_in_page(explorer, "() => document.querySelectorAll('#output .tokens .tok.new').length === 13")
    for count in (14, 15):
        explorer.locator("#step").click()
        wait_in_page(explorer, f"() => document.querySelectorAll('#output .tokens .tok.new').length === {count}")
    explorer.locator("#prompt textarea").fill("Der Hund")
    shows_prediction(explorer, api.predict(prompt="Der Hund", lang="de", top_k=10, api_name="/predict"))
    shot(explorer, "follow-04-explores")
    presenter.wait_for_timeout(1000)
    assert presenter.locator("#prompt textarea").input_value() == text and chosen(presenter) == 13
    for follower in followers[:2]:
        assert follower.locator("#prompt textarea").input_value() == text and chosen(follower) == 13

    presenter.locator("#close-room").click()
    for follower in followers[:2]:
        wait_in_page(follower, "() => document.body.classList.contains('room-ended')", timeout=10_000)
        assert "closed" in follower.locator("#room-banner").inner_text()
    assert httpx.get(f"{server}room/{code}/events").status_code == 404
    no_error_toasts(presenter)
    for page in [presenter, *followers]:
        assert not [e for e in page.errors if "404" not in e], page.errors  # the closed room's stream: a 404
        page.context.close()


def test_a_room_ends_when_its_presenter_leaves(browser, server):
    presenter = new_page(browser, {"width": 1280, "height": 800})
    open_demo(presenter, server)
    presenter.locator("#share-room").click()
    address = presenter.locator("#room-link a").get_attribute("href", timeout=10_000)
    follower = new_page(browser, {"width": 400, "height": 800})
    follower.goto(address)
    follower.wait_for_selector("#candidates-plot .bars path", timeout=30_000)
    presenter.context.close()  # the tab closed: the session ends
    wait_in_page(follower, "() => document.body.classList.contains('room-ended')", timeout=30_000)
    assert "closed" in follower.locator("#room-banner").inner_text()
    assert httpx.get(address.replace("?follow=", "room/") + "/events", timeout=10).status_code == 404
    follower.context.close()


def test_a_wrong_follow_code_says_so(browser, server):
    follower = new_page(browser, {"width": 400, "height": 800})
    follower.goto(server + "?follow=not-a-room")
    wait_in_page(follower, "() => document.body.classList.contains('room-ended')", timeout=30_000)
    assert "No open room" in follower.locator("#room-banner").inner_text()
    follower.context.close()


def test_presenter_mode_fits_a_projector(browser, server):
    page = new_page(browser, {"width": 1280, "height": 720})
    open_demo(page, server, "?presenter=1")
    page.wait_for_timeout(500)  # the chart redrawn at the presenter's size
    for selector in ["#prompt textarea", "#output .tokens", "#candidates-plot .main-svg", "#step", "#continue"]:
        box = page.locator(selector).first.bounding_box()
        assert box["x"] >= 0 and box["y"] >= 0, selector
        assert box["x"] + box["width"] <= 1280 and box["y"] + box["height"] <= 720, (selector, box)
    sizes = page.locator("#candidates-plot .ytick text").evaluate_all(
        "nodes => nodes.map(node => parseFloat(getComputedStyle(node).fontSize))"
    )
    assert len(sizes) == len(plot_labels(page)) and min(sizes) >= 28
    for hidden in ["#sampling", "#top-k", "#literal-specials", "#n-tokens"]:
        assert not page.locator(hidden).is_visible(), hidden
    page.locator("#header").click()
    page.keyboard.press("c")
    wait_in_page(page, "() => document.querySelectorAll('#output .tokens .tok.new').length >= 1", timeout=30_000)
    page.keyboard.press("s")
    shot(page, "presenter-1280x720")
    page.keyboard.press("p")  # back to the page's own size
    wait_in_page(
        page, "() => parseFloat(getComputedStyle(document.querySelector('#candidates-plot .ytick text')).fontSize) < 20"
    )
    assert not page.errors, page.errors
    page.context.close()


def test_charts_save_svg_and_export_gives_html_that_opens_offline(browser, server, tmp_path):
    page = new_page(browser, {"width": 1280, "height": 900})
    open_demo(page, server)
    page.locator("#candidates-plot .js-plotly-plot").hover()
    with page.expect_download() as download:
        page.locator('#candidates-plot .modebar-btn[data-title="Download plot as SVG"]').click()
    svg = tmp_path / "chart.svg"
    download.value.save_as(svg)
    assert download.value.suggested_filename == "xlm-candidates-plot.svg"
    assert svg.read_text().startswith("<svg") and "Next token" in svg.read_text()

    page.locator("#step").click()
    wait_in_page(page, "() => document.querySelectorAll('#output .tokens .tok.new').length === 1")
    chosen_token = page.locator("#output .tokens .tok.new").inner_text()
    page.locator("#export").click()
    link = page.locator("#export-html a").first
    link.wait_for(timeout=30_000)
    for box, name in (("#export-file", "xlm-exploration.json"), ("#export-html", "xlm-view.html")):
        shown = page.locator(f"{box} .filename")
        assert shown.inner_text().replace("\n", "").strip() == name  # the file's own name, whole
        assert shown.evaluate("cell => [...cell.children].every(part => part.scrollWidth <= part.clientWidth + 1)")
    view = tmp_path / "view.html"
    view.write_bytes(httpx.get(httpx.URL(page.url).join(link.get_attribute("href")), timeout=30).content)
    page.context.close()

    offline = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
    slide = offline.new_page()
    slide.goto(view.as_uri())
    slide.wait_for_selector(".js-plotly-plot .bars path", timeout=10_000)  # plotly.js inside the file
    assert slide.locator(".tokens .tok.new").inner_text() == chosen_token
    assert slide.locator(".js-plotly-plot").count() == 2  # the candidates and the continuation so far
    shot(slide, "export-view-offline")
    offline.close()


PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def boxes(page, selector: str) -> list[dict]:
    """The bounding boxes of the elements a selector finds, as drawn."""
    return page.locator(selector).evaluate_all("nodes => nodes.map(node => node.getBoundingClientRect().toJSON())")


def inside(box: dict, frame: dict) -> bool:
    return box["left"] >= frame["left"] - 1 and box["right"] <= frame["right"] + 1


@pytest.mark.skip(reason=CONTINUE_WITH_A_NARROW_FOLLOWER)
def test_a_followers_phone_reads_every_chart_whole(browser, server):
    presenter = new_page(browser, {"width": 1280, "height": 800})
    open_demo(presenter, server)
    presenter.locator("#share-room").click()
    presenter.locator("#room-link a").wait_for(timeout=10_000)
    phone = new_page(browser, **PHONE)
    phone.goto(presenter.locator("#room-link a").get_attribute("href"))
    phone.wait_for_selector("#candidates-plot .bars path", timeout=30_000)
    presenter.locator("#prompt textarea").fill("Die Katze schläft auf dem warmen Sofa und")
    presenter.locator("#lang label", has_text="German").click()
    presenter.locator("#header").click()
    for count in (1, 2):
        presenter.keyboard.press("ArrowRight")
        wait_in_page(presenter, "n => document.querySelectorAll('#output .tokens .tok.new').length === n", arg=count)
    presenter.locator("#continue").click()
    wait_in_page(presenter, "() => document.querySelectorAll('#output .tokens .tok.new').length === 14", timeout=60_000)
    presenter.locator("#compare").click()
    phone.wait_for_selector("#compare-plot .bars path", timeout=30_000)
    wait_in_page(phone, "() => document.querySelectorAll('#output .tokens .tok.new').length === 14")
    shot(phone, "follow-05-phone-390")
    shot(presenter, "follow-05-presenter-1280")
    for plot in ("candidates-plot", "timeline-plot", "compare-plot"):
        [frame] = boxes(phone, f"#{plot} .main-svg >> nth=0")
        assert phone.locator(f"#{plot} .modebar").count() == 0 or not phone.locator(f"#{plot} .modebar").is_visible()
        for title in boxes(phone, f"#{plot} .gtitle"):
            assert inside(title, frame), (plot, title, frame)  # the title whole, wrapped where it must
        for label in boxes(phone, f"#{plot} text.bartext"):
            assert inside(label, frame), (plot, label, frame)  # every value label whole, its % included
    shown = [box for box in boxes(phone, "#timeline-plot .xtick text") if box["width"] > 0]
    assert 2 <= len(shown) < 14  # thinned on a phone
    assert all(left["right"] <= right["left"] for left, right in itertools.pairwise(shown)), shown  # none overlap
    assert not [box for box in boxes(phone, "#compare-plot .xtick text") if box["width"] > 0]  # the bars' labels say
    assert presenter.locator("#candidates-plot .modebar").count() == 1  # the toolbar stays on a larger screen
    assert not phone.errors and not presenter.errors, phone.errors + presenter.errors
    phone.context.close()
    presenter.context.close()


PLOTS = ("candidates-plot", "compare-plot")
QUOTE = "Wer fremde Sprachen nicht kennt, weiß nichts von seiner eigenen. -- Goethe, Maximen und"  # a fortune


@pytest.mark.parametrize("screen", [PHONE, {"viewport": {"width": 1280, "height": 900}}], ids=["390", "1280"])
def test_a_bar_that_reaches_the_charts_edge_keeps_its_whole_label(browser, bundled_server, screen):
    """The bundled model knows this quote: its next word near 100%, a bar to the chart's edge."""
    page = new_page(browser, **screen)
    page.goto(f"{bundled_server}?prompt={quote(QUOTE)}&lang=de")
    page.wait_for_selector("#candidates-plot .bars path", timeout=60_000)
    page.locator("#compare").click()
    page.wait_for_selector("#compare-plot .bars path", timeout=30_000)
    labels = {plot: page.locator(f"#{plot} text.bartext").all_text_contents() for plot in PLOTS}
    assert float(labels["candidates-plot"][0].rstrip("%")) > 90  # the bar reaches the chart's edge
    for plot in PLOTS:
        [frame] = boxes(page, f"#{plot} .main-svg >> nth=0")
        assert all(label.endswith("%") for label in labels[plot] if label)
        for label in boxes(page, f"#{plot} text.bartext"):
            assert inside(label, frame), (plot, label, frame)  # drawn whole, its % included
    [frame] = boxes(page, "#candidates-plot .main-svg >> nth=0")
    ticks = [box for box in boxes(page, "#candidates-plot .xtick text") if box["width"] > 0]
    assert all(inside(tick, frame) and tick["width"] > tick["height"] for tick in ticks)  # whole, level
    assert all(left["right"] <= right["left"] for left, right in itertools.pairwise(ticks)), ticks
    shot(page, f"edge-label-{screen['viewport']['width']}")
    assert not page.errors, page.errors
    page.context.close()
