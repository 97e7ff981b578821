"""A user's mistake on the page: one sentence worded for the page, one log line, no traceback; a fault keeps its."""

import logging

import gradio as gr
import pytest

from xlm_demo.page.guards import checked_prompt, user_errors

LONG = "The text is 30,000 characters; the limit is 20,000."


def logged(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "xlm_demo"]


def test_a_long_text_on_the_page_is_kept_and_logged_once_without_a_traceback(caplog):
    caplog.set_level(logging.INFO, logger="xlm_demo")
    with pytest.raises(gr.Error) as raised, user_errors("Compare"), user_errors("the text"):  # nested: one line
        checked_prompt("x" * 30_000)
    assert raised.value.message == f"{LONG} Nothing was lost."
    assert not raised.value.print_exception  # Gradio prints no traceback for it
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert logged(caplog) == [f"user error in the text: {LONG} Nothing was lost."]


def test_an_api_caller_is_not_told_of_the_page(caplog):
    caplog.set_level(logging.INFO, logger="xlm_demo")
    with pytest.raises(gr.Error) as raised, user_errors("/score"):
        checked_prompt("x" * 30_000, on_page=False)
    assert raised.value.message == LONG and logged(caplog) == [f"user error in /score: {LONG}"]


def test_a_sentence_the_page_reads_as_html_is_escaped_but_logged_as_written(caplog):
    caplog.set_level(logging.INFO, logger="xlm_demo")
    with pytest.raises(gr.Error) as raised, user_errors("Fill", on_page=True):
        raise ValueError("The text has no blank: write <special1> where a word is missing.")
    assert raised.value.message == "The text has no blank: write &lt;special1&gt; where a word is missing."
    assert logged(caplog) == ["user error in Fill: The text has no blank: write <special1> where a word is missing."]


def test_a_real_fault_is_no_user_error(caplog):
    caplog.set_level(logging.INFO, logger="xlm_demo")
    with pytest.raises(RuntimeError), user_errors("/predict"):
        raise RuntimeError("CUDA out of memory")
    assert logged(caplog) == []
