"""The 'Inside the model' section's callbacks as plain functions: what each view shows, one sentence per mistake."""

import re

import gradio as gr
import plotly.graph_objects as go
import pytest
import torch

from tests.reference import reference_logits
from xlm_demo.inside.attention import attention, attention_by_lang
from xlm_demo.page.inside import charts, events

PROMPT = "Die Katze schläft, weil es kalt ist und der Ofen aus ist."


TYPED = {"prompt": PROMPT, "lang": "de"}  # the page state: the text alone


def attend(engine, position="", difference=False, layer=None, head=None, state=TYPED):
    inside = events.new_inside()
    return events.attention_view(state, position, difference, layer, head, inside, engine=engine)


def explain(engine, inside, method="grad_x_input", target=None, contrast=None, colouring="score", state=TYPED):
    return events.attribution_view(state, method, 16, target, contrast, colouring, inside, engine=engine)


def test_attention_view_draws_every_head_and_shows_the_last_layer_first(engine):
    figure, layer, head, head_html, inside = attend(engine)
    heatmap = figure.data[0]
    n = len(engine.encode(PROMPT, "de").input_ids)
    assert isinstance(figure, go.Figure) and len(heatmap.z) == 2 * 4 and len(heatmap.z[0]) == n
    assert (layer, head) == (2, 1) and "Layer 2, head 1" in head_html
    assert f"position {n - 1}" in figure.layout.title.text
    assert head_html.count('<span class="tok') == n and head_html.count("tok query") == 1
    assert inside["attention"]["weights"][1, 0].tolist() == pytest.approx(list(heatmap.z[4]), abs=0)


def test_head_view_shows_that_heads_weights(engine):
    *_, inside = attend(engine, position="5")
    shown = events.head_view(inside, 1, 3)
    weights = inside["attention"]["weights"][0, 2].tolist()
    tips = [float(w) for w in re.findall(r"weight ([+-][\d.]+)", shown)]
    assert tips == pytest.approx(weights, abs=5e-4) and len(tips) == 6
    assert "Layer 1, head 3" in shown


def test_difference_is_english_minus_german(engine):
    figure, *_, inside = attend(engine, difference=True)
    en = attend_lang(engine, "en")
    de = attend_lang(engine, "de")
    torch.testing.assert_close(inside["attention"]["weights"], en - de, atol=1e-6, rtol=0)
    assert "English − German" in figure.layout.title.text and figure.data[0].zmid == 0


def attend_lang(engine, lang):
    return attention_by_lang(engine, engine.encode(PROMPT, "de"), None, [lang])[lang].weights


def test_attribution_view_targets_the_top_candidate_and_lists_the_others(engine, tiny_model):
    *_, inside = attend(engine)
    figure, target, contrast, text, summary, inside = explain(engine, inside)
    ids = engine.encode(PROMPT, "de").input_ids
    probs = reference_logits(tiny_model[1], ids, 0)[-1].softmax(-1)
    assert int(target["value"]) == int(probs.argmax())
    assert [int(v) for _, v in target["choices"]] == probs.topk(10).indices.tolist()
    assert contrast["value"] == "" and contrast["choices"][0] == ("(none)", "")
    assert [trace.name for trace in figure.data] == [
        "token embedding",
        "position embedding",
        "language id",
        "position's total",
    ]
    assert list(figure.data[3].y) == pytest.approx([t["score"] for t in inside["attribution"]["tokens"]])
    shown = text.split('class="legend"')[0]
    assert shown.count('<span class="tok') == len(ids) - 1  # the rank colouring's spans: no start token
    assert "German id" in summary and "completeness" not in summary


def test_contrast_and_integrated_gradients_in_the_summary(engine):
    *_, inside = attend(engine)
    first = explain(engine, inside)
    second_id = first[1]["choices"][1][1]
    figure, _, contrast, _, summary, inside = explain(
        engine, first[-1], method="integrated_gradients", target=first[1]["value"], contrast=second_id
    )
    assert contrast["value"] == second_id and "rather than" in figure.layout.title.text
    error = inside["attribution"]["completeness_error"]
    assert f"completeness error {error:.2%}" in summary and " − log p(" in summary


def test_colouring_switch_keeps_the_spans(engine):
    *_, inside = attend(engine)
    *_, inside = explain(engine, inside)
    by_rank = events.text_view(inside, "rank")
    by_score = events.text_view(inside, "score")
    by_language = events.text_view(inside, "language_part")
    texts = [
        re.findall(r">([^<]+)</span>", html.split('class="legend"')[0]) for html in (by_rank, by_score, by_language)
    ]
    assert texts[0] == texts[1] == texts[2]
    assert "tok r" in by_rank and "rgba(" in by_score and by_score != by_language


def test_continuation_is_part_of_what_is_explained(engine):
    state = {**TYPED, "appended": [20, 21], "appended_langs": ["en", "en"]}  # text: de
    *_, inside = attend(engine, state=state)
    *_, summary, inside = explain(engine, inside, state=state)
    ids = inside["attribution"]["input_ids"]
    assert ids[-2:] == [20, 21] and inside["text"]["n_typed"] == len(ids) - 2
    assert "the language ids" in summary  # German text, English continuation
    for colouring in ("rank", "score"):  # both mark the two tokens fed with the English id
        assert events.text_view(inside, colouring).count('data-lang="en"') == 2
    encoded = engine.append(engine.encode(PROMPT, "de"), [20, 21], id_langs=["en", "en"])
    expected = attention(engine, encoded).weights  # checked against transformers in test_attention
    torch.testing.assert_close(inside["attention"]["weights"], expected, atol=0, rtol=0)


@pytest.mark.parametrize(
    "position, message",
    [("99", r"position must be between 0 and \d+"), ("two", "position must be a whole number")],
)
def test_bad_position_is_one_sentence(engine, position, message):
    with pytest.raises(gr.Error, match=message):
        attend(engine, position=position)


def test_unknown_target_is_one_sentence(engine):
    *_, inside = attend(engine)
    with pytest.raises(gr.Error, match="target must be a token id below"):
        explain(engine, inside, target="no-such-token")


def test_long_texts_draw_the_most_important_positions_only():
    weights = [[[1 / 100] * 100]]
    weights[0][0][37] = 0.5
    figure = charts.attention_figure(weights, [f"t{i}" for i in range(100)], 99)
    assert len(figure.data[0].z[0]) == charts.MAX_DRAWN
    assert "t37 ·37" in figure.layout.xaxis.ticktext
    assert f"the {charts.MAX_DRAWN} most attended of 100 positions" in figure.layout.title.text
    assert torch.tensor(charts.drawn_positions(list(range(100)))).diff().min() > 0  # in text order


def test_long_texts_draw_the_largest_attributions_only():
    rows = [
        {"id": i, "token": f"t{i}", "score": 0.01, "token_part": 0.01, "position_part": 0.0, "language_part": 0.0}
        for i in range(300)
    ]
    rows[5] = {**rows[5], "score": -2.0, "token_part": -2.0}
    figure = charts.attribution_figure(rows, "Why")
    assert all(len(trace.x) == charts.MAX_DRAWN for trace in figure.data)
    assert "t5 ·5" in figure.layout.xaxis.ticktext and "the 64 largest of 300 positions" in figure.layout.title.text
