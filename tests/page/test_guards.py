"""A user's mistake at each edge: one sentence, one log line, no traceback; a fault keeps its."""

import logging

import gradio as gr
import pytest
from starlette.requests import Request

from xlm_demo.page.guards import refused, user_errors
from xlm_demo.page.requests import UserError, checked_text

LONG = "The text is 30,000 characters; the limit is 20,000."


def logged(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "xlm_demo"]


def test_a_long_text_on_the_page_is_kept_and_logged_once_without_a_traceback(caplog):
    caplog.set_level(logging.INFO, logger="xlm_demo")
    with pytest.raises(gr.Error) as raised, user_errors("Compare"), user_errors("the text"):  # nested: one line
        checked_text("x" * 30_000)
    assert raised.value.message == LONG
    assert not raised.value.print_exception  # Gradio prints no traceback for it
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert logged(caplog) == [f"user error in the text: {LONG}"]


def test_an_api_caller_is_told_the_sentence_the_route_answers(caplog):
    caplog.set_level(logging.INFO, logger="xlm_demo")
    with pytest.raises(gr.Error) as raised, user_errors("/score"):
        checked_text("x" * 30_000)
    answer = refused(Request({"type": "http", "method": "POST", "path": "/view", "headers": []}), UserError(LONG))
    assert raised.value.message == answer.body.decode() == LONG and answer.status_code == 400
    assert logged(caplog) == [f"user error in /score: {LONG}", f"user error in POST /view (400): {LONG}"]


def test_a_route_answers_a_user_errors_own_status_and_an_engines_sentence_capitalised(caplog):
    caplog.set_level(logging.INFO, logger="xlm_demo")
    request = Request({"type": "http", "method": "GET", "path": "/room/x/events", "headers": []})
    assert refused(request, UserError("No open room has this code.", 404)).status_code == 404
    engine_said = refused(request, ValueError("top-k must be between 1 and 1000, got 0"))
    assert (engine_said.status_code, engine_said.body) == (400, b"Top-k must be between 1 and 1000, got 0.")
    assert logged(caplog)[-1] == "user error in GET /room/x/events (400): Top-k must be between 1 and 1000, got 0."


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
