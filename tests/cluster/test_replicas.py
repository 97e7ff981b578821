"""The page in front of two replicas on Ray Serve (the bundled model, Ray started with 2 CPUs): answers equal the
in-process engine's, each page stays on one replica and both serve, a stalled replica holds up only its own pages, a
follower follows a presenter whose model runs on the replicas, and a replica killed in a room of 32 loses nothing."""

import asyncio
import json
import re
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import orjson
import psutil
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

ray = pytest.importorskip("ray", reason="the cluster extra (Ray Serve) is not installed")
from ray import serve  # noqa: E402

from benchmarks.follow import PAGE_DEFAULTS, gradio_event, present, share_event  # noqa: E402
from benchmarks.room import Member, run_room  # noqa: E402
from tests.conftest import serving  # noqa: E402
from tests.page.conftest import CHROMIUM  # noqa: E402
from tests.page.test_browser import ARTIFACTS  # noqa: E402
from xlm_demo import api  # noqa: E402
from xlm_demo.cluster.start import APP, DEPLOYMENT  # noqa: E402
from xlm_demo.model.checkpoint import BUNDLED_MODEL  # noqa: E402
from xlm_demo.page.fill import events as fill_events  # noqa: E402
from xlm_demo.page.lens import events as lens_events  # noqa: E402
from xlm_demo.page.next_token import actions, side_by_side  # noqa: E402
from xlm_demo.page.requests import ModelFacts, read_view_request  # noqa: E402
from xlm_demo.server import create_app, start_replicas  # noqa: E402

MEMBERS = 32
# What the page sends besides its text, its number and what it draws (benchmarks/follow.py reads the page's defaults).
RECORDED = {
    "keystroke": {**PAGE_DEFAULTS, "action": "show"},
    "step": {**PAGE_DEFAULTS, "action": "step"},
    "continue": {**PAGE_DEFAULTS, "action": "continue", "n_tokens": 12},
}


@pytest.fixture(scope="module")
def cluster():
    """Ray on 2 CPUs, 2 replicas of the bundled model, and the page in front of them: (its URL, the tier)."""
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        tier = start_replicas(str(BUNDLED_MODEL), "cpu", "float32", "none", replicas=2, cpus=1)
        with serving(create_app(str(BUNDLED_MODEL), device="cpu", tier=tier)) as url:
            yield url, tier
    finally:
        serve.shutdown()
        ray.shutdown()


def view(base: str, **body) -> httpx.Response:
    return httpx.post(f"{base}view", json={**PAGE_DEFAULTS, **body}, timeout=60)


def stream(base: str, **body) -> tuple[str, list[dict]]:
    """A continuation's replica and records, as the page reads them."""
    with httpx.stream("POST", f"{base}view/continue", json={**PAGE_DEFAULTS, **body}, timeout=60) as answer:
        assert answer.status_code == 200
        lines = [line for line in answer.iter_lines() if line.startswith("data: ")]
        return answer.headers["X-Served-By"], [json.loads(line.removeprefix("data: ")) for line in lines]


def assert_same_view(served: dict, expected: dict) -> None:
    """Two records show the same: positions, chosen tokens, candidates (probabilities within 1e-5) and the coloured
    spans (their tooltips' rounded numbers aside)."""
    for name in ("prompt", "ids", "langs", "typed", "appended", "appended_langs", "spans_from", "streaming"):
        assert served[name] == expected[name], name
    assert [c["id"] for c in served["candidates"]] == [c["id"] for c in expected["candidates"]]
    assert [c["prob"] for c in served["candidates"]] == pytest.approx([c["prob"] for c in expected["candidates"]],
                                                                      abs=1e-5)  # fmt: skip
    untitled = [re.sub(r' title="[^"]*"', "", span) for span in served["spans"]]
    assert untitled == [re.sub(r' title="[^"]*"', "", span) for span in expected["spans"]]


def test_the_replicas_answer_as_the_in_process_engine(cluster, bundled_engine):
    base, _ = cluster
    stepped = view(base, prompt="The weather in Berlin is", action="step").json()
    chosen = {name: stepped[name] for name in ("appended", "appended_langs")}
    bodies = [
        {"prompt": "Die Katze sitzt auf der", "lang": "de", "top_k": 7},
        {"prompt": "The weather in Berlin is", "action": "step"},
        {"prompt": "The weather in Berlin is", "action": "undo", **chosen},
        {"prompt": "Es regnet", "lang": "de", "continue_lang": "en", "action": "step",
         "sampling": {"sample": True, "temperature": 0.7, "top_k": 20, "top_p": 0.9, "seed": 3}},
    ]  # fmt: skip
    for body in bodies:
        answer = view(base, page=uuid.uuid4().hex, seq=1, **body)
        assert answer.status_code == 200 and answer.headers["X-Served-By"] != "in-process"
        expected = actions.answer(
            bundled_engine, read_view_request(ModelFacts.of(bundled_engine), {**PAGE_DEFAULTS, **body})
        )
        assert_same_view(answer.json(), orjson.loads(expected.to_json()))
    body = {"prompt": "Once upon a time", "action": "continue", "n_tokens": 6}
    _, records = stream(base, page=uuid.uuid4().hex, **body)
    expected = actions.continuation(
        bundled_engine, read_view_request(ModelFacts.of(bundled_engine), {**PAGE_DEFAULTS, **body})
    )
    assert [r["streaming"] for r in records] == [True] * 6 + [False]
    for record, wanted in zip(records, expected, strict=True):
        assert_same_view(record, orjson.loads(wanted.to_json()))


def test_the_sections_readings_run_on_the_replicas_as_in_process(cluster, bundled_engine):
    _, tier = cluster
    fields = {"prompt": "Die Katze sitzt auf der", "lang": "de", "top_k": 5}
    figure, summary = tier.reading(side_by_side.compare)(fields)
    expected_figure, expected_summary = side_by_side.compare(fields, engine=bundled_engine)
    assert summary == expected_summary
    assert [trace.y for trace in figure.data] == [trace.y for trace in expected_figure.data]  # the candidates
    blank = {"prompt": "The cat sleeps on the <special1> .", "lang": "en", "top_k": 5}
    assert (
        tier.reading(fill_events.fill_view)(blank, "")[1] == fill_events.fill_view(blank, "", engine=bundled_engine)[1]
    )
    shown = list(tier.reading(lens_events.show)({"prompt": "The house is", "lang": "en"}, 3))
    assert len(shown) == 2 and shown[-1][-1].scores.keys() == {"de", "en"}  # the layers, then the verdict
    with pytest.raises(Exception, match="Literal is on"):  # a user's mistake, raised on the front as on the replica
        tier.reading(fill_events.fill_view)({**blank, "literal": True}, "")


def same_payload(served, expected) -> bool:
    """Two JSON answers alike: the same keys, ids and words, and numbers within 1e-5 (another process sums in
    another order)."""
    if isinstance(expected, dict):
        return (
            isinstance(served, dict)
            and served.keys() == expected.keys()
            and all(same_payload(served[key], expected[key]) for key in expected)
        )
    if isinstance(expected, list | tuple):
        return isinstance(served, list) and len(served) == len(expected) and all(map(same_payload, served, expected))
    if isinstance(expected, float):
        return served == pytest.approx(expected, abs=1e-5)
    return served == expected


def test_the_named_api_is_answered_by_the_replicas_as_in_process(cluster, bundled_engine):
    base, _ = cluster
    client = Client(base, verbose=False)
    in_process = api.named(bundled_engine)  # the endpoints as `make run` answers them
    expected = in_process["predict"](prompt="Die Katze sitzt auf der", lang="de", top_k=5)
    stalled = replica_processes()
    for process in stalled:
        process.suspend()
    try:
        job = client.submit(prompt="Die Katze sitzt auf der", lang="de", top_k=5, api_name="/predict")
        time.sleep(5.0)  # the front's own engine would answer in a fraction of this; it waits on the replicas
        assert not job.done()
    finally:
        for process in stalled:
            process.resume()
    assert same_payload(job.result(timeout=60), expected)
    streamed = client.submit(prompt="Once upon a time", max_new_tokens=5, api_name="/generate")
    answers = list(streamed)
    assert same_payload(answers, list(in_process["generate"](prompt="Once upon a time", max_new_tokens=5)))
    assert [len(answer["new_ids"]) for answer in answers] == [1, 2, 3, 4, 5]
    with pytest.raises(AppError, match="language must be one of"):
        client.predict(prompt="Hallo", lang="xx", api_name="/predict")


def test_bad_input_is_one_sentence_from_the_front_or_a_replica(cluster):
    base, _ = cluster
    refused_by_front = view(base, lang="xx")
    assert refused_by_front.status_code == 400 and "Unknown language id 'xx'" in refused_by_front.text
    refused_by_replica = view(base, action="pick", choice=3)
    assert refused_by_replica.status_code == 400 and "no longer on the chart" in refused_by_replica.text
    assert "Traceback" not in refused_by_replica.text and refused_by_replica.text.count("\n") == 0


def served_by(base: str, pages: list[str], typed: int) -> dict[str, list[str]]:
    """Each page typing `typed` words, all pages at once: the replica that answered each of its requests."""

    async def page(client: httpx.AsyncClient, page_id: str, seen: list[str]) -> None:
        text = f"Page {page_id[:4]} says"
        for seq, word in enumerate(["the", "weather", "in", "Berlin", "is", "cold", "and", "grey"][:typed]):
            text += " " + word
            body = {**PAGE_DEFAULTS, "prompt": text, "page": page_id, "seq": seq + 1}
            answer = (await client.post(f"{base}view", json=body)).raise_for_status()
            seen.append(answer.headers["X-Served-By"])

    async def everyone() -> dict[str, list[str]]:
        seen = {page_id: [] for page_id in pages}
        async with httpx.AsyncClient(timeout=60) as client:
            await asyncio.gather(*(page(client, page_id, seen[page_id]) for page_id in pages))
        return seen

    return asyncio.run(everyone())


def test_each_page_stays_on_one_replica_and_both_replicas_serve(cluster):
    base, _ = cluster
    seen = served_by(base, [uuid.uuid4().hex for _ in range(24)], typed=8)
    for page_id, replicas in seen.items():
        assert Counter(replicas).most_common(1)[0][1] / len(replicas) >= 0.95, page_id
    assert len({replica for replicas in seen.values() for replica in replicas}) == 2


def replica_processes() -> list[psutil.Process]:
    """The replicas' processes (Ray names each after its deployment)."""
    title = f"ServeReplica:{APP}:{DEPLOYMENT}"
    return [p for p in psutil.process_iter(["cmdline"]) if any(title in part for part in p.info["cmdline"] or [])]


def test_a_stalled_replica_holds_up_only_its_own_pages(cluster):
    base, _ = cluster
    pages = [uuid.uuid4().hex for _ in range(12)]
    home = {page_id: replicas[0] for page_id, replicas in served_by(base, pages, typed=1).items()}
    stalled = replica_processes()[0]
    answered: dict[str, float] = {}

    async def ask(client: httpx.AsyncClient, page_id: str) -> None:
        body = {**PAGE_DEFAULTS, "prompt": f"Page {page_id[:4]} says more", "page": page_id, "seq": 10}
        (await client.post(f"{base}view", json=body)).raise_for_status()
        answered[page_id] = time.monotonic()

    async def everyone() -> tuple[set[str], set[str]]:
        async with httpx.AsyncClient(timeout=60) as client:
            asking = [asyncio.create_task(ask(client, page_id)) for page_id in pages]
            await asyncio.sleep(5.0)  # every page of the running replica is answered in this time, on any machine
            early = set(answered)
            stalled.resume()
            await asyncio.gather(*asking)
        return early, set(answered) - early

    stalled.suspend()
    try:
        early, late = asyncio.run(everyone())
    finally:
        stalled.resume()
    assert early and late  # the running replica's pages went on; the stalled one's waited for it
    assert {home[page_id] for page_id in early}.isdisjoint({home[page_id] for page_id in late})


def test_a_follower_follows_a_presenter_whose_model_runs_on_the_replicas(cluster):
    base, _ = cluster

    async def scenario() -> tuple[list[dict], list[str], list[bool], dict]:
        async with httpx.AsyncClient(timeout=60) as client:
            config = (await client.get(f"{base}config")).json()
            error, outputs = await gradio_event(client, base, uuid.uuid4().hex, share_event(config))
            assert error is None
            code, key = re.search(r'data-code=\\"([\w-]+)\\" data-key=\\"([\w-]+)', json.dumps(outputs)).groups()
            presence = asyncio.create_task(present(client, base, code, key))
            seen: list[dict] = []
            streaming_seen_while_presenter_streams = []

            async def follow() -> None:
                async with client.stream("GET", f"{base}room/{code}/events") as events:
                    async for line in events.aiter_lines():
                        if line.startswith("data: ") and "prompt" in (record := json.loads(line[6:])):
                            seen.append(record)

            following = asyncio.create_task(follow())
            await asyncio.sleep(0.5)
            presenter = Member(0, RECORDED, room=key)
            presenter.text = "The weather in Berlin"
            presenter.record = (await client.post(f"{base}view", json=presenter.body("keystroke"))).json()
            replicas = []
            async with client.stream("POST", f"{base}view/continue", json=presenter.body("continue")) as answer:
                replicas.append(answer.headers["X-Served-By"])
                async for line in answer.aiter_lines():
                    if line.startswith("data: "):
                        presenter.record = json.loads(line[6:])
                        streaming_seen_while_presenter_streams.append(any(r["streaming"] for r in seen))
            await asyncio.sleep(1.0)
            following.cancel()
            presence.cancel()
            await asyncio.gather(following, presence, return_exceptions=True)
            return seen, replicas, streaming_seen_while_presenter_streams, presenter.record

    seen, replicas, during, last = asyncio.run(scenario())
    assert replicas[0] != "in-process"
    assert seen[0]["prompt"] == "The weather in Berlin" and seen[0]["spans_from"] == 1  # the whole view
    assert any(during)  # the follower saw the continuation's tokens while the presenter's stream ran
    assert seen[-1]["ids"] == last["ids"] and not seen[-1]["streaming"]


@pytest.fixture
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.mark.browser
def test_the_page_in_front_of_the_replicas_follows_typing_and_compares(cluster, browser):
    base, _ = cluster
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(base)
        page.wait_for_selector("#candidates-plot .bars path", timeout=60_000)
        page.locator("#prompt textarea").fill("Die Katze sitzt auf der")
        page.wait_for_function(
            "() => (document.querySelector('#output')?.textContent || '').includes('Katze')", timeout=60_000
        )
        page.locator("#compare").click()
        page.wait_for_function(
            "() => (document.querySelector('#compare-plot .gtitle')?.textContent || '').includes('KL(')",
            timeout=60_000,
        )
        assert page.locator("#compare-plot .bars path").count() > 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "cluster-page.png"), full_page=True)
    finally:
        page.close()


def replica_ready(count: int, seconds: float) -> bool:
    """Whether the deployment has `count` running replicas within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        states = serve.status().applications[APP].deployments[DEPLOYMENT].replica_states
        if states.get("RUNNING", 0) == count and sum(states.values()) == count:
            return True
        time.sleep(1.0)
    return False


def replica_actor(unique_id: str):
    """The actor of the replica an answer named."""
    return ray.get_actor(f"SERVE_REPLICA::{APP}#{DEPLOYMENT}#{unique_id}", namespace="serve")


def replica_process(unique_id: str) -> psutil.Process:
    """The process of the replica an answer named (Ray's actor table, read for tests and debugging)."""
    return psutil.Process(ray._private.state.actors(replica_actor(unique_id)._actor_id.hex())["Pid"])


def kill(unique_id: str) -> None:
    """Kill a replica as a machine's failure would: Serve must start another in its place."""
    ray.kill(replica_actor(unique_id), no_restart=True)


def pages_on(base: str, replica: str, count: int) -> list[str]:
    """`count` page ids that the router sends to `replica`."""
    homes = served_by(base, [uuid.uuid4().hex for _ in range(8 * count)], typed=1)
    return [page_id for page_id, replicas in homes.items() if replicas[0] == replica][:count]


def test_a_replica_killed_in_a_room_loses_no_keystroke_and_is_replaced(cluster, bundled_engine):
    base, _ = cluster
    victim = view(base, prompt="Who serves this?", page="victim-finder").headers["X-Served-By"]
    process = replica_process(victim)
    continuing, *reading = pages_on(base, victim, 9)
    body = {**PAGE_DEFAULTS, "prompt": "Once upon a time", "action": "continue", "n_tokens": 64, "page": continuing}
    long_text = " ".join(f"word{i} and" for i in range(1500))  # the model's 512 positions: a view of some length
    records: list[dict] = []
    in_flight: list[httpx.Response] = []

    def read_long(page_id: str) -> None:
        in_flight.append(view(base, prompt=f"{page_id} {long_text}", page=page_id, seq=100))

    def continue_then_kill() -> None:
        """At the continuation's first token, 8 long views go to the victim, which stalls (a machine frozen), then
        dies with them and the continuation in flight, while a room types."""
        with httpx.stream("POST", f"{base}view/continue", json=body, timeout=120) as answer:
            for line in answer.iter_lines():
                if line.startswith("data: "):
                    records.append(json.loads(line.removeprefix("data: ")))
                    if len(records) == 1:
                        for page_id in reading:
                            threading.Thread(target=read_long, args=(page_id,)).start()
                        time.sleep(0.05)  # sent; the continuation's 64 tokens take the bundled model ~0.3 s alone
                        process.suspend()
                        threading.Timer(3.0, kill, [victim]).start()

    continuing_thread = threading.Thread(target=continue_then_kill)
    continuing_thread.start()
    tally = asyncio.run(run_room(base, RECORDED, MEMBERS, seconds=8.0, warmup=0.0))
    continuing_thread.join()
    deadline = time.monotonic() + 120
    while len(in_flight) < len(reading) and time.monotonic() < deadline:
        time.sleep(0.5)

    assert tally.errors == []
    assert sorted(tally.last_seen) == list(range(MEMBERS)) and len(tally.keystrokes) >= MEMBERS
    for member, (text, record) in tally.last_seen.items():  # the last word each member typed is on their page
        typed = bundled_engine.encode(text, "en").input_ids
        assert record["prompt"] == text and record["ids"][: len(typed)] == typed, f"member {member}"
    assert [answer.status_code for answer in in_flight] == [200] * len(reading)  # sent again, to the other replica
    assert {answer.headers["X-Served-By"] for answer in in_flight}.isdisjoint({victim, "in-process"})
    assert records[0]["streaming"] and not records[-1]["streaming"]  # the stream ended with the settled view
    greedy = [step.id for step in bundled_engine.generate(bundled_engine.encode("Once upon a time", "en"), 64)]
    assert 1 <= len(records[-1]["appended"]) <= 64 and records[-1]["appended"] == greedy[: len(records[-1]["appended"])]
    assert replica_ready(2, seconds=180)  # Ray put a new replica in its place
    assert view(base, prompt="Who serves this now?", page=continuing, seq=100).headers["X-Served-By"] != victim
