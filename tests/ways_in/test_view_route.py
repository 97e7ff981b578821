"""The page's hot route on a real server: a keystroke, Step and Continue answered with the reference's numbers,
every bad input one sentence with a 4xx (and the server unaffected), older requests of a page dropped, and Stop
that stops the model."""

import json
import logging
import time
from itertools import islice

import httpx
import pytest

from tests.reference import reference_logits
from xlm_demo.engine import scheduler as scheduler_module


def view(server: str, timeout: float = 30, **body) -> httpx.Response:
    return httpx.post(f"{server}view", json={"prompt": "The house is", "lang": "en", **body}, timeout=timeout)


def records(server: str, **body) -> list[dict]:
    """A continuation's records, as the page reads them from the stream."""
    with httpx.stream("POST", f"{server}view/continue", json={"prompt": "The house is", "lang": "en", **body},
                      timeout=60) as response:  # fmt: skip
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]


def test_a_keystroke_answers_the_reference_distribution(server, tiny_model):
    answer = view(server, seq=3, prompt="Die Katze", lang="de", top_k=7)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    record = answer.json()
    probs = reference_logits(tiny_model[1], record["ids"], 0)[-1].softmax(-1)  # under the German id (0)
    assert [c["id"] for c in record["candidates"]] == probs.topk(7).indices.tolist()
    assert [c["prob"] for c in record["candidates"]] == pytest.approx(probs.topk(7).values.tolist(), abs=1e-5)
    assert record["seq"] == 3 and record["lang_name"] == "German" and record["spans_from"] == 1


def test_step_then_continue_carry_the_chosen_tokens(server, tiny_model):
    stepped = view(server, action="step").json()
    streamed = records(server, action="continue", n_tokens=4, appended=stepped["appended"],
                       appended_langs=stepped["appended_langs"])  # fmt: skip
    assert [r["streaming"] for r in streamed] == [True] * 4 + [False]
    ids = streamed[-1]["ids"]
    assert streamed[-1]["appended"] == [stepped["appended"][0], *ids[-4:]]
    logits = reference_logits(tiny_model[1], ids, 1)  # (T, V): each position's next token under English
    assert ids[-4:] == logits[-5:-1].argmax(-1).tolist()  # greedy: each the reference's most probable


@pytest.mark.parametrize(
    "content, headers, status, sentence",
    [
        (b"prompt=x", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "Send the request as JSON"),
        (b"{not json", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "must be a JSON object"),
        (json.dumps({"prompt": "x" * 70_000}).encode(), {"Content-Type": "application/json"}, 413, "larger than 64 KB"),
    ],
)
def test_a_body_that_is_not_a_pages_request_is_refused_in_a_sentence(server, content, headers, status, sentence):
    answer = httpx.post(f"{server}view", content=content, headers=headers, timeout=30)
    assert answer.status_code == status and sentence in answer.text and "Traceback" not in answer.text


@pytest.mark.parametrize(
    "body, sentence",
    [
        ({"prompt": "Wort " * 4001}, "The text is 20,005 characters; the limit is 20,000."),
        ({"lang": "xx"}, "Unknown language id 'xx'"),
        ({"appended": [10**6], "appended_langs": ["en"]}, "Token ids must be whole numbers"),
        ({"appended": [462], "appended_langs": ["en"]}, "Token ids must be whole numbers from 0 to 461."),
        ({"appended": [5] * 600, "appended_langs": ["en"] * 600}, "chosen tokens do not fit in the model's"),
        ({"top_k": -1}, "between 1 and 50"),
        ({"top_k": 10**12}, "between 1 and 50"),
        ({"sampling": {"sample": True, "temperature": 99}}, "Temperature must be between 0 and 10"),
        ({"action": "pick", "choice": 3}, "no longer on the chart"),
    ],
)
def test_bad_input_is_one_sentence_and_the_server_carries_on(server, body, sentence, caplog):
    caplog.set_level(logging.INFO)
    answer = view(server, **body)
    assert answer.status_code == 400 and sentence in answer.text
    assert answer.text.count("\n") == 0 and "Traceback" not in answer.text
    assert logged(caplog) == [f"user error in POST /view (400): {answer.text}"]  # one line, no traceback
    assert view(server).status_code == 200  # unaffected


def logged(caplog) -> list[str]:
    """What the server logged while the test ran, through any logger: its lines, and no traceback."""
    assert not any(record.exc_info for record in caplog.records)
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.INFO
            and record.name.startswith(("xlm_demo", "gradio", "uvicorn", "starlette"))]  # fmt: skip


def test_a_body_streamed_past_the_limit_is_refused_as_it_comes(server, caplog):
    caplog.set_level(logging.INFO)

    def chunks():  # no Content-Length: the size shows only as the body streams in
        yield b'{"prompt": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    answer = httpx.post(f"{server}view", content=chunks(), headers={"Content-Type": "application/json"}, timeout=30)
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413 and answer.text == "The request is larger than 64 KB."
    assert logged(caplog) == ["user error in POST /view (413): The request is larger than 64 KB."]


def test_a_pages_older_request_is_dropped_once_a_newer_one_came(server):
    assert view(server, page="one-page", seq=5).status_code == 200
    older = view(server, page="one-page", seq=4)
    assert older.status_code == 409 and "newer request" in older.text
    assert view(server, page="another-page", seq=4).status_code == 200  # each page its own


def test_closing_the_stream_stops_the_continuation(server, monkeypatch):
    batches, forward = [], scheduler_module.Scheduler._forward

    def slow_forward(self, batch):  # about 20 tokens a second, so that the stream outlasts the test's reading
        batches.append(time.monotonic())
        time.sleep(0.05)
        return forward(self, batch)

    monkeypatch.setattr(scheduler_module.Scheduler, "_forward", slow_forward)
    with httpx.stream("POST", f"{server}view/continue", json={"prompt": "Once upon", "lang": "en",
                      "action": "continue", "n_tokens": 40}, timeout=60) as response:  # fmt: skip
        seen = list(islice((line for line in response.iter_lines() if line.startswith("data: ")), 3))
    assert len(seen) == 3  # then the page closes the stream (Stop)
    time.sleep(0.5)  # the token being computed finishes
    count = len(batches)
    time.sleep(1.0)
    assert len(batches) == count  # no token computed for a page that stopped listening
