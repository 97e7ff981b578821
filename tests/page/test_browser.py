"""The page in Debian's Chromium, driven like a person would: type, switch, pick, step, stream, stop, undo."""

import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from gradio_client import Client

from tests.conftest import CHROMIUM
from tests.page.conftest import new_page
from tests.page.waiting import wait_in_page
from xlm_demo.engine import scheduler as scheduler_module
from xlm_demo.page.next_token import side_by_side

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_demo(page, server, query=""):
    page.goto(server + query)
    page.wait_for_selector("#candidates-plot .bars path", timeout=60_000)


def plot_labels(page, plot="candidates-plot"):
    return page.locator(f"#{plot} .ytick text").evaluate_all("nodes => nodes.map(node => node.textContent)")


def new_tokens(page):
    """The chosen tokens as shown, in display form: a piece that continues a word loses its @@ there."""
    return page.locator("#output .tokens .tok.new").all_inner_texts()


def as_shown(token):
    return token.removesuffix("@@")


def shows_prediction(page, payload):
    """Wait until the chart shows this prediction (its entropy and candidates); order holds up to near-ties."""
    candidates = payload["candidates"]
    last = candidates[-1]["prob"]
    clear = [c["token"] for c in candidates if c["prob"] > last + 1e-4]  # the last place may go to a near-tie
    wait_in_page(
        page,
        "([title, count, tokens]) => { const shown = [...document.querySelectorAll('#candidates-plot .ytick text')]"
        ".map(node => node.textContent);"
        " return document.querySelector('#candidates-plot .gtitle')?.textContent.includes(title)"
        " && shown.length === count && tokens.every(token => shown.includes(token)); }",
        arg=[f"entropy {payload['entropy']:.2f}", len(candidates), clear],
        timeout=30_000,
    )
    prob = {c["token"]: c["prob"] for c in candidates}
    for label, expected in zip(plot_labels(page), candidates, strict=True):
        assert abs(prob.get(label, last) - expected["prob"]) < 1e-4, (label, expected)


def slowed_model(monkeypatch, seconds: float) -> None:
    """Every batch of the model takes `seconds` longer: an answer that comes late enough to act before it."""
    forward = scheduler_module.Scheduler._forward

    def slow_forward(self, batch):
        time.sleep(seconds)
        return forward(self, batch)

    monkeypatch.setattr(scheduler_module.Scheduler, "_forward", slow_forward)


def no_error_toasts(page):
    assert page.locator(".toast-body.error").count() == 0


def test_chart_follows_typing_and_language(page, server, api):
    open_demo(page, server)
    shot(page, "01-loaded")
    text = "Die Katze schläft auf dem Sofa"
    chart = page.locator("#candidates-plot .js-plotly-plot")
    chart.evaluate("node => { node.dataset.drawn = 'before typing'; }")
    page.locator("#prompt textarea").fill(text)
    shows_prediction(page, api.predict(prompt=text, lang="en", top_k=10, api_name="/predict"))
    assert "Katze" in page.locator("#output").inner_text()
    assert chart.get_attribute("data-drawn") == "before typing"  # redrawn in place, not made anew
    inside = chart.evaluate(
        "node => node.querySelector('.main-svg').getBoundingClientRect().right"
        " <= node.closest('.block').getBoundingClientRect().right + 1"
    )
    assert inside  # drawn to its block's width

    page.locator("#lang label", has_text="German").click()
    shows_prediction(page, api.predict(prompt=text, lang="de", top_k=10, api_name="/predict"))
    shot(page, "02-german")
    no_error_toasts(page)


def test_step_pick_undo_reset(page, server, api):
    open_demo(page, server)
    prompt = page.locator("#prompt textarea").input_value()
    first = as_shown(api.predict(prompt=prompt, lang="en", top_k=10, api_name="/predict")["candidates"][0]["token"])
    assert not page.locator("#timeline-plot").is_visible()  # no continuation, no timeline
    page.locator("#step").click()
    wait_in_page(page, "() => document.querySelectorAll('#output .tokens .tok.new').length === 1")
    assert new_tokens(page) == [first]
    page.locator("#timeline-plot .bars path").first.wait_for()

    second_choice = page.locator("#candidate-list label").nth(1)
    picked = as_shown(re.sub(r"\s*\([\d.]+%\)$", "", second_choice.inner_text()))
    second_choice.click()
    wait_in_page(page, "() => document.querySelectorAll('#output .tokens .tok.new').length === 2")
    assert new_tokens(page) == [first, picked]
    shot(page, "03-picked")

    page.locator("#export").click()
    link = page.locator("#export-file a").first
    link.wait_for(timeout=30_000)
    assert link.get_attribute("href").endswith(".json")
    assert "ids=" in page.locator("#status a").get_attribute("href")  # the share link carries the continuation

    page.locator("#undo").click()
    wait_in_page(page, "() => document.querySelectorAll('#output .tokens .tok.new').length === 1")
    page.locator("#reset").click()
    wait_in_page(page, "() => document.querySelectorAll('#output .tokens .tok.new').length === 0")
    page.locator("#timeline-plot").wait_for(state="hidden")
    assert page.locator("#prompt textarea").input_value() == prompt  # nothing typed is lost
    no_error_toasts(page)


def test_continue_streams_and_stop_keeps_what_came(page, server):
    open_demo(page, server)
    page.locator("#continue").click()
    wait_in_page(page, "() => document.querySelectorAll('#output .tokens .tok.new').length >= 2", timeout=30_000)
    page.locator("#stop").click()
    page.wait_for_timeout(1500)
    count = len(new_tokens(page))
    assert 2 <= count <= 12
    page.wait_for_timeout(1500)
    assert len(new_tokens(page)) == count  # stopped means stopped
    assert page.locator("#timeline-plot .bars path").count() >= 2
    shot(page, "04-continued")
    no_error_toasts(page)


def test_compare_shows_both_language_ids(page, server):
    open_demo(page, server)
    page.locator("#compare").click()
    page.wait_for_selector("#compare-plot .bars path", timeout=30_000)
    assert "KL(" in page.locator("#compare-plot .gtitle").text_content()
    legend = page.locator("#compare-plot .legendtext").evaluate_all("nodes => nodes.map(node => node.textContent)")
    assert legend == ["German id", "English id"]
    shot(page, "05-compare")


def test_the_sections_read_the_page_state_as_the_page_shows_it(page, server, engine, monkeypatch):
    open_demo(page, server)
    prompt = page.locator("#prompt textarea").input_value()
    page.locator("#step").click()
    wait_in_page(page, "() => document.querySelectorAll('#output .tokens .tok.new').length === 1")
    chosen = int(parse_qs(urlsplit(page.locator("#status a").get_attribute("href")).query)["ids"][0])
    stepped = {"prompt": prompt, "lang": "en", "appended": [chosen], "appended_langs": ["en"]}
    typed = {"prompt": "Die Katze", "lang": "en"}
    kl = {text: side_by_side.compare(state, engine=engine)[1].split(" · ")[0] for text, state in
          (("stepped", stepped), ("typed", typed))}  # fmt: skip  # "KL(de ‖ en) = 0.123 nats"
    page.locator("#compare").click()
    wait_in_page(page, "kl => document.querySelector('#compare-summary').innerText.includes(kl)", arg=kl["stepped"])
    slowed_model(monkeypatch, 2.0)  # the new text's view comes seconds later; Compare reads the text at once
    page.locator("#prompt textarea").fill(typed["prompt"])
    page.locator("#compare").click()
    wait_in_page(page, "kl => document.querySelector('#compare-summary').innerText.includes(kl)", arg=kl["typed"])
    no_error_toasts(page)


def test_presenter_keys(page, server):
    open_demo(page, server)
    page.locator("#header").click()  # focus the page, not a text box
    page.keyboard.press("p")
    assert "presenter" in page.evaluate("document.body.className")
    page.keyboard.press("ArrowRight")
    wait_in_page(page, "() => document.querySelectorAll('#output .tokens .tok.new').length === 1")
    page.keyboard.press("2")
    wait_in_page(page, "() => document.querySelectorAll('#output .tokens .tok.new').length === 2")
    page.keyboard.press("Backspace")
    wait_in_page(page, "() => document.querySelectorAll('#output .tokens .tok.new').length === 1")
    page.keyboard.press("l")
    wait_in_page(page, "() => document.querySelector('#lang input[value=\"de\"]').checked")
    shot(page, "06-presenter")


def test_typing_shortcut_keys_in_the_text_box_types_them(page, server):
    open_demo(page, server)
    box = page.locator("#prompt textarea")
    box.fill("")
    box.type("lp2")
    assert box.input_value() == "lp2"
    assert len(new_tokens(page)) == 0


def test_deep_link_restores_text_and_language(page, server, api):
    text = "Heute ist das Wetter"
    open_demo(page, server, f"?prompt={quote(text)}&lang=de&top_k=7")
    assert page.locator("#prompt textarea").input_value() == text
    assert page.locator('#lang input[value="de"]').is_checked()
    shows_prediction(page, api.predict(prompt=text, lang="de", top_k=7, api_name="/predict"))


def test_a_link_with_a_bad_part_opens_the_page_without_it_and_says_so(page, server, api):
    text = "Heute ist das Wetter"
    open_demo(page, server, f"?prompt={quote(text)}&lang=xx&top_k=99&ids=x")
    assert page.locator("#prompt textarea").input_value() == text  # the page opens on the link's text
    shows_prediction(page, api.predict(prompt=text, lang="en", top_k=10, api_name="/predict"))  # the rest dropped
    wait_in_page(page, "() => document.querySelectorAll('.toast-message-text').length === 3")  # one note a part
    said = page.locator(".toast-message-text").all_inner_texts()
    assert all(sentence.startswith("From the link: ") and sentence.endswith(" It was left out.") for sentence in said)
    assert "Unknown language id 'xx'" in said[0] and "between 1 and 50; it was 99" in said[1] and "'x'" in said[2]
    assert new_tokens(page) == []
    shot(page, "05-link-with-a-bad-part")


def test_model_panel_names_the_fidelity_choices(page, server):
    open_demo(page, server)
    page.get_by_text("Model", exact=True).click()
    panel = page.locator("#model-panel").inner_text()
    assert re.search(r"causal", panel) and "</s>" in panel and "Precision: float32" in panel


def test_too_long_text_is_one_sentence_and_stays_in_the_box(browser, server):
    page = new_page(browser)  # the refusal, a 400, is a console error here
    page.goto(server)
    page.wait_for_selector("#candidates-plot .bars path", timeout=60_000)
    text = "Wort " * 4001
    page.locator("#prompt textarea").fill(text)
    said = page.locator("#view-error")
    said.wait_for(timeout=30_000)
    assert "The text is 20,005 characters; the limit is 20,000." in said.inner_text()
    assert "Traceback" not in page.content()
    assert page.locator("#prompt textarea").input_value() == text
    shot(page, "07-too-long")
    page.context.close()


def test_fidelity_view_shows_both_runs(page, server):
    open_demo(page, server)
    page.get_by_text("Fidelity: the same text through transformers' defaults").click()
    page.locator("#fidelity").click()
    page.wait_for_selector("#defaults-plot .bars path", timeout=30_000)
    assert "transformers' defaults" in page.locator("#defaults-plot .gtitle").text_content()
    assert "&lt;s&gt;" in page.locator("#fidelity-summary").inner_html()
    shot(page, "08-fidelity")


def test_clicking_a_bar_picks_that_candidate(page, server):
    open_demo(page, server)
    third = as_shown(plot_labels(page)[2])
    box = page.locator("#candidates-plot .trace.bars .point").nth(2).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#candidates-plot .hovertext")
    page.mouse.down()
    page.mouse.up()
    wait_in_page(page, "() => document.querySelectorAll('#output .tokens .tok.new').length === 1")
    assert new_tokens(page) == [third]


def test_the_inspector_fills_when_opened_and_follows_the_text_while_open(page, server):
    open_demo(page, server)
    table = page.locator("#inspector")
    shown = page.evaluate("() => document.querySelector('#inspector')?.innerText ?? ''")
    assert "</s>" not in shown  # built only while someone can see it
    page.get_by_text("Tokens as the model sees them").click()
    wait_in_page(page, "() => document.querySelector('#inspector').innerText.includes('</s>')", timeout=30_000)
    assert "weather" in table.inner_text()
    page.locator("#prompt textarea").fill("Die Regierung hat gestern beschlossen")
    wait_in_page(page, "() => document.querySelector('#inspector').innerText.includes('Regierung')", timeout=30_000)
    assert "weather" not in table.inner_text()
    shot(page, "10-inspector-open")
    no_error_toasts(page)


def test_typed_specials_show_as_the_model_sees_them(page, server, api):
    """</s> and <special1> typed become ids 1 and 5, shown with their ids; ticked literal, they are characters."""
    open_demo(page, server)
    text = "Es war einmal. </s> Once upon a <special1>"
    box = page.locator("#prompt textarea")
    box.fill("")
    box.press_sequentially(text)
    shows_prediction(page, api.predict(prompt=text, lang="en", top_k=10, api_name="/predict"))
    specials = page.locator("#output .tokens .tok.special")
    assert specials.all_inner_texts() == ["</s>1", "<special1>5"]
    assert specials.first.get_attribute("title").startswith("id 1 ·")
    page.get_by_text("Tokens as the model sees them").click()
    wait_in_page(
        page,
        "() => [...document.querySelectorAll('#inspector [role=gridcell]')]"
        ".some(cell => cell.innerText.trim() === '<special1>')",
    )
    rows = page.locator("#inspector [role=row]").evaluate_all(
        "rows => rows.map(row => [...row.querySelectorAll('[role=gridcell]')].map(cell => cell.innerText.trim()))"
    )
    assert [row[1:3] for row in rows if row[2:3] in (["</s>"], ["<special1>"])] == [
        ["1", "</s>"],  # the start token
        ["1", "</s>"],  # the typed one
        ["5", "<special1>"],
    ]
    shot(page, "11-specials")

    page.locator("#literal-specials input").check()
    shows_prediction(page, api.predict(prompt=text, lang="en", top_k=10, literal_specials=True, api_name="/predict"))
    assert "</s>1" not in page.locator("#output .tokens").inner_text()
    link = page.locator("#status a").get_attribute("href")
    assert "literal_specials=1" in link
    shot(page, "12-specials-literal")

    open_demo(page, server, link)
    assert page.locator("#literal-specials input").is_checked()
    assert page.locator("#prompt textarea").input_value() == text
    no_error_toasts(page)


def test_model_panel_lists_the_special_tokens(page, server):
    open_demo(page, server)
    page.get_by_text("Model", exact=True).click()
    panel = page.locator("#model-panel").inner_text()
    assert "<special1> = 5, the mask token" in panel and "</s> = 1, starts every sequence" in panel


def test_an_english_french_checkpoint_offers_and_compares_english_and_french(browser, enfr_server):
    page = new_page(browser)
    open_demo(page, enfr_server)
    assert page.locator("#lang label").all_inner_texts() == ["English", "French"]
    assert "XLM English/French explorer" in page.locator("#header").inner_text()
    text = "L'homme qu'il a vu aujourd'hui\u00a0?"
    page.locator("#prompt textarea").fill(text)
    page.locator("#lang label", has_text="French").click()
    api = Client(enfr_server, verbose=False)
    shows_prediction(page, api.predict(prompt=text, lang="fr", top_k=10, api_name="/predict"))
    assert "lang=fr" in page.locator("#status a").get_attribute("href")
    with pytest.raises(Exception, match=r"language must be one of en \(English\), fr \(French\), got 'de'"):
        api.predict(prompt=text, lang="de", top_k=10, api_name="/predict")

    page.locator("#compare").click()
    page.wait_for_selector("#compare-plot .bars path", timeout=30_000)
    legend = page.locator("#compare-plot .legendtext").evaluate_all("nodes => nodes.map(node => node.textContent)")
    assert legend == ["English id", "French id"]
    assert "KL(en‖fr)" in page.locator("#compare-plot .gtitle").text_content()
    summary = page.locator("#compare-summary").inner_text()
    assert "French id: " in summary and "French-only" in summary and "German" not in summary

    page.get_by_text("Tokens as the model sees them").click()
    wait_in_page(page, "() => document.querySelector('#inspector').innerText.includes('fr (1)')")  # once opened
    page.get_by_text("Model", exact=True).click()
    assert "English (en) = 0, French (fr) = 1" in page.locator("#model-panel").inner_text()
    shot(page, "09-english-french")
    no_error_toasts(page)
    page.context.close()


def shot_of(locator, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def open_inside(page, server):
    open_demo(page, server)
    page.get_by_text("Inside the model: attention and attribution").click()
    page.locator("#look-inside").click()
    page.wait_for_selector("#attribution-plot .bars path", timeout=60_000)
    page.wait_for_selector("#head-text .tokens")


def test_inside_the_model_heads_contrast_and_colouring(page, server, api):
    open_inside(page, server)
    prompt = page.locator("#prompt textarea").input_value()
    shot_of(page.locator("#inside"), "20-inside")
    attention = api.predict(prompt=prompt, lang="en", api_name="/attention")
    assert f"position {attention['position']}" in page.locator("#attention-plot .gtitle").text_content()

    rows = len(attention["weights"]) * len(attention["weights"][0])
    grid = page.locator("#attention-plot .nsewdrag").first.bounding_box()
    page.mouse.move(grid["x"] + grid["width"] / 2, grid["y"] + (6 + 0.5) * grid["height"] / rows)  # layer 2, head 3
    page.wait_for_selector("#attention-plot .hovertext")
    page.mouse.down()
    page.mouse.up()
    wait_in_page(page, "() => document.querySelector('#head-text').innerText.includes('Layer 2, head 3')")
    tips = page.locator("#head-text .tok").evaluate_all("nodes => nodes.map(node => node.title)")
    shown = [float(re.search(r"weight ([+-][\d.]+)", tip).group(1)) for tip in tips]
    assert shown == pytest.approx(attention["weights"][1][2], abs=5e-4)
    shot_of(page.locator("#inside"), "21-inside-head")

    page.locator("#contrast input").click()
    page.locator("ul[role=listbox] li").nth(2).click()  # (none), the top candidate, then the second
    wait_in_page(page, "() => document.querySelector('#attribution-summary').innerText.includes(' − log p(')")
    target = page.locator("#target input").input_value()
    contrast = page.locator("#contrast input").input_value()
    assert target != contrast
    plain = api.predict(prompt=prompt, lang="en", api_name="/attribute")
    second = api.predict(prompt=prompt, lang="en", top_k=2, api_name="/predict")["candidates"][1]
    expected = api.predict(
        prompt=prompt, lang="en", target=plain["target"]["id"], contrast=second["id"], api_name="/attribute"
    )
    assert f"= {expected['value']:.3f}." in page.locator("#attribution-summary").inner_text()
    assert "rather than" in page.locator("#attribution-plot .gtitle").text_content()
    shot_of(page.locator("#inside"), "22-inside-contrast")

    page.locator("#colouring label", has_text="rank given the prefix").click()
    page.wait_for_selector("#attribution-text .tok.r1, #attribution-text .tok.r10, #attribution-text .tok.rlow")
    shot_of(page.locator("#inside"), "23-inside-rank")
    page.locator("#colouring label", has_text="language id's share").click()
    wait_in_page(page, "() => document.querySelector('#attribution-text .tok').style.background !== ''")

    page.locator("#attention-difference label").click()
    wait_in_page(
        page, "() => document.querySelector('#attention-plot .gtitle').textContent.includes('English − German')"
    )
    assert "English − German weights" in page.locator("#head-text").inner_text()
    shot_of(page.locator("#inside"), "24-inside-difference")
    no_error_toasts(page)


def test_inside_the_model_bad_position_is_one_sentence(browser, server):
    page = new_page(browser)  # the refusal is a console error here
    open_inside(page, server)
    box = page.locator("#position textarea, #position input").first
    box.fill("99")
    box.press("Enter")
    toast = page.locator(".toast-body.error")
    toast.wait_for(timeout=30_000)
    assert re.search(r"position must be between 0 and \d+ \(the text has \d+ positions", toast.inner_text())
    assert "Traceback" not in page.content()
    shot(page, "25-inside-bad-position")
    page.context.close()


def test_layer_by_layer_shows_both_charts_follows_a_chosen_target_and_patches(page, server, api):
    text = "Die Katze schläft auf dem Sofa"
    open_demo(page, server, f"?prompt={quote(text)}&lang=de")
    page.get_by_text("Inside the model: layer by layer").click()
    page.wait_for_selector("#lens-plot .heatmaplayer image", timeout=60_000)
    page.wait_for_selector("#lens-language-plot .scatterlayer .trace", timeout=30_000)
    assert page.locator("#lens-plot .heatmaplayer image").count() == 2  # one map per language id
    legend = page.locator("#lens-language-plot .legendtext").evaluate_all("nodes => nodes.map(n => n.textContent)")
    assert legend == ["German id", "English id"]
    page.wait_for_selector("#patching-plot .scatterlayer .trace", timeout=30_000)
    wait_in_page(page, "() => document.querySelector('#verdict').textContent.includes('perplexity')")
    page.wait_for_selector("#verdict-plot .bars path", state="attached", timeout=30_000)
    shot_of(page.locator("#lens-section"), "30-layer-by-layer")

    # The target list: the final top-1 under the page's id, then the rest of its top 6, then the other id's.
    third = api.predict(prompt=text, lang="de", top_k=6, api_name="/lens")["layers"][-1]["candidates"][2]
    page.locator("#lens-target input").click()
    option = page.locator("#lens-target [role=option]").nth(2)
    assert option.get_attribute("aria-label").startswith(f"{third['token']}  (")
    option.click()
    chosen = third["id"]
    lensed = api.predict(prompt=text, lang="de", top_k=3, target=chosen, api_name="/lens")
    ranks = " → ".join(str(layer["target"]["rank"]) for layer in lensed["layers"])
    wait_in_page(
        page, "ranks => document.querySelector('#lens-summary').textContent.includes(ranks)", arg=f"German id {ranks}"
    )  # the page's German-id ranks of the chosen target are /lens's, layer by layer

    page.locator("#patch-layer input[type=number]").fill("0")
    page.locator("#patch-layer input[type=number]").press("Tab")
    wait_in_page(page, "() => document.querySelector('#patching-summary').textContent.includes('from layer 0 on')")
    shot_of(page.locator("#lens-section"), "31-layer-by-layer-target-and-patching")

    longer = text + " und träumt von"  # the open section follows the text
    page.locator("#prompt textarea").fill(longer)
    n_tokens = len(api.predict(prompt=longer, lang="de", top_k=3, api_name="/lens")["input_ids"]) - 1
    wait_in_page(page, "n => document.querySelector('#verdict').textContent.includes(`${n} tokens`)", arg=n_tokens)
    no_error_toasts(page)


def test_fill_the_blank_shows_with_a_blank_and_ranks_by_the_whole_text(page, server, api):
    open_demo(page, server)
    section = page.locator("#fill-section")
    assert not section.is_visible()  # no blank, no section
    text = "The weather in <special1> was cold that winter ."
    page.locator("#prompt textarea").fill(text)
    section.wait_for(state="visible", timeout=30_000)
    page.locator("#fill-words input, #fill-words textarea").first.fill("Berlin")
    page.locator("#fill").click()
    page.wait_for_selector("#fill-plot .bars path", timeout=60_000)
    expected = api.predict(prompt=text, lang="en", top_k=10, candidates="Berlin", api_name="/fill")["candidates"]
    labels = plot_labels(page, "fill-plot")
    assert labels[: len(expected)] == [c["text"] + (" (yours)" if c["text"] == "Berlin" else "") for c in expected]
    titles = page.locator("#fill-plot .gtitle, #fill-plot .annotation-text").all_text_contents()
    assert {"Whole text, English id", "Left context alone, German id"} <= set(titles)
    summary = page.locator("#fill-summary").inner_text()
    assert "English id:" in summary and "German id:" in summary and expected[0]["text"] in summary
    shot(page, "fill-01-ranked")

    page.locator("#prompt textarea").fill("Paris is the capital of France .")
    section.wait_for(state="hidden", timeout=30_000)
    page.locator("#prompt textarea").evaluate("box => box.setSelectionRange(13, 20)")  # "capital"
    page.locator("#blank-word").click()
    wait_in_page(
        page, "() => document.querySelector('#prompt textarea').value === 'Paris is the <special1> of France .'"
    )
    section.wait_for(state="visible", timeout=30_000)
    wait_in_page(page, "() => document.querySelector('#fill-summary').innerText.includes('Paris is the')")
    no_error_toasts(page)

    page.get_by_text("Fidelity: the same text through transformers' defaults").click()
    page.locator("#fidelity").click()
    page.wait_for_selector("#widget-plot .bars path", timeout=30_000)
    assert "Fill-Mask widget" in page.locator("#widget-plot .gtitle").text_content()
    assert "at the blank's own position" in page.locator("#fidelity-summary").inner_text()
    page.locator("#widget-plot").scroll_into_view_if_needed()
    shot(page, "fill-02-blanked-and-the-widget")


def test_fill_with_two_blanks_says_so_in_a_sentence(page, server):
    open_demo(page, server)
    page.locator("#prompt textarea").fill("The <special1> in <special1> was cold .")
    page.locator("#fill-section").wait_for(state="visible", timeout=30_000)
    page.locator("#fill").click()
    toast = page.locator(".toast-body.error")
    toast.wait_for(timeout=30_000)
    assert "The text has 2 blanks (<special1>); write only one, the word to fill." in toast.inner_text()


def test_blank_a_word_on_an_empty_text_says_what_to_do_once(page, server):
    open_demo(page, server)
    page.locator("#prompt textarea").fill("")
    wait_in_page(page, "() => document.querySelector('#status .positions').textContent === '1 position'")  # </s>
    page.locator("#blank-word").click()
    toast = page.locator(".toast-body.error")
    toast.first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)  # a second toast, if one came, would be drawn by now
    assert toast.count() == 1
    assert "There is no word to blank yet: type a text, then Blank a word blanks its last word" in toast.inner_text()
    assert "write <special1>" not in toast.inner_text()
