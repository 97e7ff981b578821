"""The "Fill the blank" section's events and chart, and the hub widget's reading in the fidelity view, as plain
functions checked against the reference."""

import math

import gradio as gr
import pytest

from tests.checkpoints import LANG2ID
from tests.reference import reference_fill_mask, reference_logits, reference_text_logprob
from xlm_demo.page.fill import events
from xlm_demo.page.next_token import side_by_side

TEXT = "The weather in <special1> was cold that winter ."
WORDS = ["Berlin", "Regenschirm"]


@pytest.fixture(scope="module")
def view(engine):
    """The section's chart and summary for a text with a blank and two words of a person's own."""
    return events.fill_view({"prompt": TEXT, "lang": "en", "top_k": 6}, ", ".join(WORDS), engine=engine)


def test_the_chart_shows_each_ids_whole_text_shares_and_the_left_contexts_next_tokens(view, engine, tiny_model):
    figure, _ = view
    rows = [trace for trace in figure.data if trace.name == "whole text"]
    nexts = [trace for trace in figure.data if trace.name == "next token"]
    assert len(rows) == len(nexts) == 2  # English first, then German
    ids = engine.encode_blank(TEXT, "en").input_ids
    blank = ids.index(5)
    for lang, whole, following, axis in zip(["en", "de"], rows, nexts, ["y", "y3"], strict=True):
        labels = figure.layout[axis.replace("y", "yaxis")].ticktext
        fill = engine.fill(TEXT, lang, 6, WORDS)
        assert list(labels) == [c.text + (" (yours)" if c.given else "") for c in fill.candidates]
        expected = [
            reference_text_logprob(tiny_model[1], [*ids[:blank], *c.ids, *ids[blank + 1 :]], LANG2ID[lang])
            for c in fill.candidates
        ]
        norm = math.log(sum(math.exp(value - max(expected)) for value in expected)) + max(expected)
        assert list(whole.x) == pytest.approx([math.exp(value - norm) for value in expected], abs=1e-5)
        after_left = reference_logits(tiny_model[1], ids[:blank], LANG2ID[lang])[-1].softmax(-1)
        assert list(following.x) == pytest.approx(after_left.topk(6).values.tolist(), abs=1e-5)


def test_the_summary_names_each_ids_best_filled_text(view, engine):
    _, summary = view
    lines = summary.split("  \n")
    assert lines[0].startswith("**English id:** The weather in **") and lines[2].startswith("**German id:**")
    best = engine.fill(TEXT, "en", 6, WORDS).candidates[0]
    listed = len(engine.fill(TEXT, "en", 6, WORDS).candidates)
    assert f"**{best.text}** has {best.prob:.0%} of the probability of the {listed} texts listed (of " in lines[1]


@pytest.mark.parametrize(
    ("text", "literal", "sentence"),
    [
        ("No blank here .", False, "The text has no blank: write &lt;special1&gt; where a word is missing."),
        ("<special1> and <special1>", False, "The text has 2 blanks (&lt;special1&gt;)"),
        (TEXT, True, "Literal is on, so &lt;special1&gt; is plain characters"),
    ],
)
def test_mistakes_are_one_sentence_on_the_page(engine, text, literal, sentence):
    with pytest.raises(gr.Error, match=sentence.replace("(", r"\(").replace(")", r"\)")):
        events.fill_view({"prompt": text, "lang": "en", "top_k": 5, "literal": literal}, "", engine=engine)


def test_the_fidelity_view_adds_the_widgets_reading_for_one_blank(engine, tiny_model):
    _, _, summary, widget = side_by_side.fidelity({"prompt": TEXT, "lang": "en", "top_k": 5}, engine=engine)
    expected = reference_fill_mask(tiny_model[0], TEXT, top_k=5)
    assert list(widget.data[0].customdata) == [row["token"] for row in expected]
    assert list(widget.data[0].x) == pytest.approx([row["score"] for row in expected], abs=1e-5)
    assert "Fill-Mask widget" in widget.layout.title.text and "no language id" in summary
    for text in ("<special1> and <special1>", "No blank"):
        assert side_by_side.fidelity({"prompt": text, "lang": "en", "top_k": 5}, engine=engine)[3] is None
