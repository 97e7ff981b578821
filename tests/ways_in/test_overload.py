"""Holding up in public, on a real server: time limits, a full queue that answers busy, and Stop that stops."""

import time

import httpx
import pytest
from gradio_client import Client
from gradio_client.utils import QueueError

from tests.conftest import BUSY_ROOM, BUSY_WAITING_ROOM
from xlm_demo.engine.engine import MAX_NEW_TOKENS
from xlm_demo.page import guards
from xlm_demo.page.next_token import actions
from xlm_demo.page.requests import ModelFacts, read_view_request

LONG = {"prompt": "Once upon a time", "lang": "en", "max_new_tokens": MAX_NEW_TOKENS, "api_name": "/generate"}


def wait_until(condition, seconds: float = 20.0) -> None:
    """Poll until the condition holds; fail if it never does."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{condition.__name__} did not happen within {seconds} s"
        time.sleep(0.05)


def waiting(url: str) -> int:
    """How many requests the server's queue holds, waiting for a worker."""
    return httpx.get(url + "gradio_api/queue/status").json()["queue_size"]


def start_streaming(busy_api: Client):
    """A long continuation that has begun streaming tokens, so it holds a worker."""
    job = busy_api.submit(**LONG)

    def streaming():
        return len(job.outputs()) > 0

    wait_until(streaming)
    return job


def cpu_seconds_over(seconds: float) -> float:
    """CPU time this process (the server's) spends while the test sleeps."""
    start = time.process_time()
    time.sleep(seconds)
    return time.process_time() - start


def test_continue_on_the_page_stops_at_the_time_limit_and_keeps_what_came(engine, monkeypatch):
    monkeypatch.setattr(guards, "CONTINUATION_TIME_LIMIT", 0.0)
    body = {"prompt": "The house is", "lang": "en", "action": "continue", "n_tokens": 5}
    request = read_view_request(ModelFacts.of(engine), body)
    records = list(actions.continuation(engine, request))
    assert [len(record.appended) for record in records] == [1, 1]  # one token streamed, then the settled view
    assert "Stopped after 0 seconds, the limit for one continuation." in records[-1].notes


def test_generate_stops_at_the_time_limit_with_the_tokens_so_far(busy_api, monkeypatch):
    monkeypatch.setattr(guards, "CONTINUATION_TIME_LIMIT", 0.5)
    payload = busy_api.submit(**LONG).result(timeout=60)
    assert 1 <= len(payload["new_ids"]) < MAX_NEW_TOKENS


def test_a_full_queue_answers_busy_at_once(busy_server, busy_api):
    jobs = [start_streaming(busy_api) for _ in range(BUSY_ROOM)]  # the room full
    try:
        jobs.append(busy_api.submit(**LONG))

        def queue_full():
            return waiting(busy_server) == BUSY_WAITING_ROOM

        wait_until(queue_full)
        answer = httpx.post(busy_server + "gradio_api/call/generate", json={"data": ["Hallo", "de", 5]}, timeout=5)
        assert answer.status_code == 503
        assert answer.json()["detail"].startswith("Queue is full.")  # Gradio's words; its page says "busy"
        with pytest.raises(QueueError, match="Queue is full! Please try again."):
            Client(busy_server, verbose=False).predict(prompt="Hallo", api_name="/generate")
    finally:
        for job in jobs:
            job.cancel()


def test_session_events_share_the_room_and_model_holding_ones_go_between_their_batches(busy_server, busy_api):
    jobs = [start_streaming(busy_api) for _ in range(BUSY_ROOM)]  # the room, taken by /generate
    try:
        comparison = busy_api.submit(prompt="Hallo", api_name="/compare")  # holds the model alone...
        assert set(comparison.result(timeout=30)["distributions"]) == {"de", "en"}  # ...between the room's batches
        prediction = busy_api.submit(prompt="Hallo", api_name="/predict")

        def predict_waits():
            return waiting(busy_server) == 1

        wait_until(predict_waits)  # another endpoint of the room, yet it waits for a place in it...
        time.sleep(1.0)
        assert predict_waits() and not prediction.done()  # ...for as long as the room is full
        jobs[0].cancel()
        assert prediction.result(timeout=30)["candidates"]
    finally:
        for job in jobs:
            job.cancel()


def test_stop_stops_the_tokens_and_frees_the_worker(busy_server, busy_api):
    jobs = [start_streaming(busy_api) for _ in range(BUSY_ROOM)]  # the room full
    for job in jobs:
        job.cancel()
    time.sleep(0.5)  # the token being computed at the cancel finishes
    assert cpu_seconds_over(1.0) < 0.3  # generating, the server uses about one CPU second a second
    assert waiting(busy_server) == 0
    short = busy_api.submit(prompt="Guten Morgen", lang="de", max_new_tokens=3, api_name="/generate")
    assert len(short.result(timeout=5)["new_ids"]) == 3  # otherwise it waits for seconds of 256-token runs
