"""Chart labels as Chromium draws them (the SVG's text, not the figure's JSON): every token reads as the model reads
it, and no axis repeats a tick label, on the page, in presenter mode, on a phone and in the exported view."""

import os
from pathlib import Path
from urllib.parse import quote, urljoin

import pytest
from gradio_client import Client

from tests.page.conftest import CHROMIUM
from tests.page.quoting_model import SHOWN, write_quoting_checkpoint
from tests.page.waiting import wait_in_page

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
PEAKED = 'He said "'  # ends in a quote mark: the quote 79%, then &, </s>, <special1>, ', < and >
FLAT = "The weather in Berlin is the"  # ends in a plain word: every token 0.2%

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]


@pytest.fixture(scope="module")
def quoting_server(tmp_path_factory):
    """The demo on a checkpoint whose next tokens after a quote mark are known (tests/page/quoting_model.py)."""
    from tests.conftest import serving
    from xlm_demo.server import create_app

    folder = tmp_path_factory.mktemp("quoting")
    write_quoting_checkpoint(folder)
    with serving(create_app(str(folder), device="cpu")) as url:
        yield url


@pytest.fixture(scope="module")
def api(quoting_server):
    return Client(quoting_server, verbose=False)


@pytest.fixture
def context(browser):
    """A browser context whose pages fail the test on a console error."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    errors = []
    context.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    context.on("weberror", lambda error: errors.append(str(error.error)))
    yield context
    context.close()
    assert not errors, f"console errors: {errors}"


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"labels-{name}.png"), full_page=True)


def drawn(page, selector, across=False):
    """The text of every SVG text node the selector finds, as Chromium drew it: top to bottom, or left to right."""
    return page.locator(selector).evaluate_all(
        "(nodes, across) => nodes.map(node => [node.getBoundingClientRect()[across ? 'left' : 'top'], node])"
        ".sort((a, b) => a[0] - b[0]).map(([, node]) => node.textContent)",
        across,
    )


def open_text(context, server, text, width=1400):
    """A page on the text, its chart drawn; at a phone's width when asked."""
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{server}?prompt={quote(text)}&lang=en&top_k=10")
    page.wait_for_selector("#candidates-plot .bars path", timeout=60_000)
    return page


def added(page, count):
    wait_in_page(
        page,
        "count => document.querySelectorAll('#output .tokens .tok.new').length === count",
        arg=count,
        timeout=30_000,
    )


def test_next_token_chart_and_timeline_read_quotes_ampersands_and_specials_as_written(context, quoting_server):
    page = open_text(context, quoting_server, PEAKED)
    assert drawn(page, "#candidates-plot .ytick text")[: len(SHOWN)] == SHOWN
    bar = page.locator("#candidates-plot .trace.bars .point").first.bounding_box()
    page.mouse.move(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
    page.wait_for_selector("#candidates-plot .hovertext")
    hover = drawn(page, "#candidates-plot .hovertext text tspan.line")
    assert hover[0] == '"' and hover[1].endswith('piece "</w>'), hover
    shot(page, "01-next-token")

    page.locator("#step").click()
    added(page, 1)
    for count, token in enumerate(SHOWN[1:4], start=2):  # &, </s>, <special1>: ranked 2nd, 3rd and 4th every time
        choice = page.locator("#candidate-list label").nth(count - 1)
        assert choice.inner_text().startswith(f"{token} (")
        choice.click()
        added(page, count)
    wait_in_page(page, "() => document.querySelectorAll('#timeline-plot .xtick text').length === 4")
    assert drawn(page, "#timeline-plot .xtick text", across=True) == SHOWN[:4]
    shot(page, "02-timeline")


def test_compare_and_fidelity_read_tokens_as_written(context, quoting_server):
    page = open_text(context, quoting_server, PEAKED)
    page.locator("#compare").click()
    page.wait_for_selector("#compare-plot .bars path", timeout=30_000)
    assert drawn(page, "#compare-plot .ytick text")[: len(SHOWN)] == SHOWN
    page.get_by_text("Fidelity: the same text through transformers' defaults").click()
    page.locator("#fidelity").click()
    page.wait_for_selector("#defaults-plot .bars path", timeout=30_000)
    assert drawn(page, "#faithful-plot .ytick text")[: len(SHOWN)] == SHOWN
    assert drawn(page, "#faithful-plot .gtitle") == ["As trained: causal, </s> start, cased"]
    assert {'"', "&", "</s>"} <= set(drawn(page, "#defaults-plot .ytick text"))
    shot(page, "03-compare-and-fidelity")


def test_fill_reads_the_words_given_and_the_tokens_as_written(context, quoting_server):
    page = open_text(context, quoting_server, f"{PEAKED} <special1> .")
    page.locator("#fill-section").wait_for(state="visible", timeout=30_000)
    page.locator("#fill-words input, #fill-words textarea").first.fill('"x", &lt;, R&D')
    page.locator("#fill").click()
    page.wait_for_selector("#fill-plot .bars path", timeout=60_000)
    labels = drawn(page, "#fill-plot .ytick text")
    assert labels[:5] == ['"', "&", "'", "<", ">"]  # the words the quote's embedding favours; then ties
    assert {'"x" (yours)', "& lt; (yours)", "R & D (yours)"} <= set(labels)  # as Moses splits them
    assert drawn(page, "#fill-plot .y2tick text")[: len(SHOWN)] == SHOWN  # the left context's next tokens
    shot(page, "04-fill")


def test_inside_charts_read_the_text_s_tokens_as_written(context, quoting_server, api):
    text = f"x<y & ' <special1> {PEAKED}"  # ends in a quote: the quote is the token attribution explains
    page = open_text(context, quoting_server, text)
    page.get_by_text("Inside the model: attention and attribution").click()
    page.locator("#look-inside").click()
    page.wait_for_selector("#attribution-plot .bars path", state="attached", timeout=60_000)  # zero: no mixing
    tokens = api.predict(prompt=text, lang="en", api_name="/attention")["tokens"]
    assert {'"', "&", "'", "<special1>", "</s>"} <= set(tokens)
    expected = [f"{token} ·{i}" for i, token in enumerate(tokens)]
    assert drawn(page, "#attention-plot .xtick text", across=True) == expected
    assert drawn(page, "#attribution-plot .xtick text", across=True) == expected
    assert drawn(page, "#attribution-plot .gtitle")[0].startswith('Why “"”')
    shot(page, "05-inside")

    page.get_by_text("Inside the model: layer by layer").click()
    page.wait_for_selector("#lens-plot .heatmaplayer image", timeout=60_000)
    assert set(SHOWN[:4]) <= set(drawn(page, "#lens-plot .xtick text", across=True))
    shot(page, "06-layer-by-layer")


def no_repeats(labels):
    """An axis's labels, checked: none drawn twice."""
    assert labels and len(set(labels)) == len(labels), labels
    return labels


def test_no_tick_label_repeats_on_the_page_in_presenter_mode_or_on_a_phone(context, quoting_server):
    for text, top in (
        (FLAT, ["0%", "0.5%", "1%", "1.5%", "2%"]),
        (PEAKED, ["0%", "20%", "40%", "60%", "80%", "100%"]),
    ):
        page = open_text(context, quoting_server, text)
        assert no_repeats(drawn(page, "#candidates-plot .xtick text", across=True)) == top
        page.locator("#step").click()
        page.locator("#timeline-plot .bars path").first.wait_for()
        no_repeats(drawn(page, "#timeline-plot .ytick text"))
        page.locator("#header").click()
        page.keyboard.press("p")
        wait_in_page(
            page, "() => document.querySelector('#candidates-plot .xtick text')?.style.fontSize === '28px'"
        )  # presenter mode's type
        no_repeats(drawn(page, "#candidates-plot .xtick text", across=True))
        shot(page, f"07-presenter-{'flat' if text == FLAT else 'peaked'}")
        phone = open_text(context, quoting_server, text, width=390)
        no_repeats(drawn(phone, "#candidates-plot .xtick text", across=True))
        shot(phone, f"08-phone-{'flat' if text == FLAT else 'peaked'}")


def exported_view(context, page, server, path):
    """The view's HTML file as the export offers it, saved to `path` and opened offline at 1280 px wide."""
    page.locator("#export").click()
    link = page.locator("#export-html a").first
    link.wait_for(timeout=30_000)
    path.write_bytes(page.request.get(urljoin(server, link.get_attribute("href"))).body())
    context.set_offline(True)
    view = context.new_page()
    view.set_viewport_size({"width": 1280, "height": 900})
    view.goto(path.as_uri())
    view.wait_for_selector(".js-plotly-plot .bars path")
    return view


def test_the_exported_view_reads_tokens_as_written_and_repeats_no_tick_label(context, quoting_server, tmp_path):
    for name, text in (("flat", FLAT), ("peaked", PEAKED)):
        context.set_offline(False)
        page = open_text(context, quoting_server, text)
        page.locator("#step").click()
        added(page, 1)
        view = exported_view(context, page, quoting_server, tmp_path / f"{name}.html")
        chart, timeline = view.locator(".js-plotly-plot").all()
        assert chart.locator(".xtick text").count() >= 3
        no_repeats(drawn(chart, ".xtick text", across=True))
        no_repeats(drawn(timeline, ".ytick text"))
        shot(view, f"09-export-{name}")
    assert drawn(chart, ".ytick text")[: len(SHOWN)] == SHOWN
    assert drawn(timeline, ".xtick text", across=True) == ['"']
