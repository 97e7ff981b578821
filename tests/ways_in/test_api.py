"""The named API endpoints through gradio_client against the real server, checked against the reference."""

import json

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from benchmarks.server_process import free_port, start_server, stop, wait_until_up
from tests.reference import reference_logits, reference_text_logprob


def test_endpoints_are_named(api):
    names = set(api.view_api(print_info=False, return_format="dict")["named_endpoints"])
    names_expected = {"/predict", "/score", "/generate", "/compare", "/fill", "/attention", "/attribute", "/lens"}
    assert names == names_expected  # the page's own events stay private


def test_predict_matches_reference(api, tiny_model):
    payload = api.predict(prompt="Die Katze schläft", lang="de", top_k=5, api_name="/predict")
    probs = reference_logits(tiny_model[1], payload["input_ids"], 0)[-1].softmax(-1)
    assert payload["input_ids"][0] == 1
    assert [c["id"] for c in payload["candidates"]] == probs.topk(5).indices.tolist()
    assert payload["candidates"][0]["prob"] == pytest.approx(float(probs.max()), abs=1e-5)


def test_score(api):
    payload = api.predict(prompt="The house is old.", lang="en", api_name="/score")
    assert payload["tokens"][0]["prob"] is None
    assert [t["id"] for t in payload["tokens"]] == payload["input_ids"]


def test_generate_streams_and_matches_reference_greedy(api, tiny_model):
    job = api.submit(prompt="The house", lang="en", max_new_tokens=4, api_name="/generate")
    updates = list(job)
    assert [len(u["new_ids"]) for u in updates] == [1, 2, 3, 4]
    final = updates[-1]
    ids = list(final["input_ids"])
    for _ in range(4):
        ids.append(int(reference_logits(tiny_model[1], ids, 1)[-1].argmax()))
    assert final["new_ids"] == ids[len(final["input_ids"]) :]


def test_generate_with_seed_is_repeatable(api):
    args = {"prompt": "Es war", "lang": "de", "max_new_tokens": 5, "temperature": 1.0, "seed": 11}
    first = api.predict(**args, api_name="/generate")
    second = api.predict(**args, api_name="/generate")
    assert first["new_ids"] == second["new_ids"] and first["seed"] == 11


def test_compare(api):
    payload = api.predict(prompt="Guten Morgen", top_k=5, api_name="/compare")
    assert set(payload["distributions"]) == {"de", "en"}
    assert payload["kl"]["de||en"] >= 0 and payload["kl"]["en||de"] >= 0


def test_fill_matches_reference_and_the_cli(api, tiny_model, capsys):
    from xlm_demo.cli import main

    text, words = "The weather in <special1> was cold .", "Berlin, Regenschirm"
    payload = api.predict(prompt=text, lang="en", top_k=3, candidates=words, api_name="/fill")
    ids, blank = payload["input_ids"], payload["blank"]
    assert len(payload["candidates"]) == 5 and {"Berlin", "Regenschirm"} <= {c["text"] for c in payload["candidates"]}
    for candidate in payload["candidates"]:
        filled = [*ids[:blank], *candidate["ids"], *ids[blank + 1 :]]
        assert candidate["logprob"] == pytest.approx(reference_text_logprob(tiny_model[1], filled, 1), abs=1e-5)
    main(["fill", "--model", str(tiny_model[0]), "--top-k", "3", "--candidates", words, "--json", text])
    printed = json.loads(capsys.readouterr().out)
    assert {**printed, "candidates": None} == {**payload, "candidates": None}
    for ours, theirs in zip(printed["candidates"], payload["candidates"], strict=True):
        assert (ours["text"], ours["ids"]) == (theirs["text"], theirs["ids"])
        assert ours["logprob"] == pytest.approx(theirs["logprob"], abs=1e-5)


def test_attention_matches_reference(api, tiny_model):
    payload = api.predict(prompt="Die Katze schläft", lang="de", position=3, api_name="/attention")
    assert set(payload) >= {"input_ids", "lang", "position", "weights"} and payload["position"] == 3
    ids = torch.tensor([payload["input_ids"]])
    with torch.no_grad():
        output = tiny_model[1](input_ids=ids, langs=torch.zeros_like(ids), output_attentions=True)
    expected = torch.stack(output.attentions)[:, 0, :, 3, :4]  # (layers, heads, position + 1)
    torch.testing.assert_close(torch.tensor(payload["weights"]), expected, atol=1e-5, rtol=0)


def test_attribute_shape(api, tiny_model):
    payload = api.predict(
        prompt="The house is", lang="en", method="integrated_gradients", steps=32, api_name="/attribute"
    )
    ids = payload["input_ids"]
    top = int(reference_logits(tiny_model[1], ids, 1)[-1].argmax())
    assert payload["target"]["id"] == top and payload["method"] == "integrated_gradients"
    assert [t["id"] for t in payload["tokens"]] == ids
    row = payload["tokens"][-1]
    assert set(row) == {"id", "token", "score", "token_part", "position_part", "language_part"}
    assert row["token_part"] + row["position_part"] + row["language_part"] == pytest.approx(row["score"], abs=1e-5)
    assert payload["completeness_error"] < 0.05


def test_attribute_contrast_by_token(api):
    plain = api.predict(prompt="The house is", lang="en", api_name="/attribute")
    target = plain["target"]["token"]
    payload = api.predict(prompt="The house is", lang="en", target=target, contrast="the", api_name="/attribute")
    assert payload["target"] == plain["target"] and payload["contrast"]["token"] == "the"
    assert payload["completeness_error"] is None  # gradient × input: no baseline is run


@pytest.mark.parametrize(
    "args, message",
    [
        ({"prompt": "x", "lang": "fr", "api_name": "/predict"}, "language must be one of"),
        ({"prompt": "x", "lang": "en", "top_k": 0, "api_name": "/predict"}, "top-k must be between"),
        ({"prompt": "x" * 20_001, "lang": "en", "api_name": "/predict"}, "the limit is 20,000"),
        ({"prompt": "x", "max_new_tokens": 5000, "api_name": "/generate"}, "max new tokens"),
        ({"prompt": "x", "temperature": -2.0, "api_name": "/generate"}, "temperature"),
        ({"prompt": "x", "position": 9, "api_name": "/attention"}, "position must be between 0 and 1"),
        ({"prompt": "x", "target": "no-such-token", "api_name": "/attribute"}, "target must be a token id"),
        ({"prompt": "x", "method": "lrp", "api_name": "/attribute"}, "method must be one of"),
        ({"prompt": "x", "steps": 500, "api_name": "/attribute"}, "steps must be between 1 and 64"),
        ({"prompt": "x", "api_name": "/fill"}, "The text has no blank"),
        ({"prompt": "<special1> <special1>", "api_name": "/fill"}, "The text has 2 blanks"),
    ],
)
def test_bad_requests_get_one_sentence(api, args, message):
    with pytest.raises(Exception, match=message):
        api.predict(**args)


def test_user_errors_are_their_sentences_and_one_log_line_each_not_a_traceback(tiny_model, tmp_path):
    """As whoever runs the server reads its log: a process started as `make run` starts it."""
    port, log_path = free_port(), tmp_path / "server.log"
    server = start_server(tiny_model[0], port, log_path)
    mistakes = {
        "language must be one of de (German), en (English), got 'fr'": {"lang": "fr"},
        "The text is 30,000 characters; the limit is 20,000.": {"prompt": "x" * 30_000},
        "top-k must be between 1 and 1000, got 0": {"top_k": 0},
    }
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", server, log_path)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        for sentence, args in mistakes.items():
            with pytest.raises(AppError) as raised:
                client.predict(**{"prompt": "x", "lang": "en", **args}, api_name="/predict")
            assert raised.value.message == sentence  # no quotes around it, nothing meant for the page
    finally:
        stop(server)
    log = log_path.read_text()
    assert "Traceback" not in log
    for sentence in mistakes:
        assert [line for line in log.splitlines() if sentence in line] == [f"note: user error in /predict: {sentence}"]


def test_typed_specials_are_their_ids_unless_literal_specials(api, tiny_model):
    prompt = "Die Katze </s> schläft <special1>"
    payload = api.predict(prompt=prompt, lang="de", top_k=5, api_name="/predict")
    assert payload["input_ids"].count(1) == 2 and 5 in payload["input_ids"]
    probs = reference_logits(tiny_model[1], payload["input_ids"], 0)[-1].softmax(-1)
    assert [c["prob"] for c in payload["candidates"]] == pytest.approx(probs.topk(5).values.tolist(), abs=1e-5)
    literal = api.predict(prompt=prompt, lang="de", top_k=5, literal_specials=True, api_name="/predict")
    assert literal["input_ids"].count(1) == 1 and 5 not in literal["input_ids"]
    scored = api.predict(prompt=prompt, lang="de", literal_specials=True, api_name="/score")
    assert scored["input_ids"] == literal["input_ids"]
    compared = api.predict(prompt=prompt, top_k=5, literal_specials=False, api_name="/compare")
    assert compared["distributions"]["de"]["input_ids"] == payload["input_ids"]


def test_generate_shows_specials_in_its_text_unless_literal(api):
    prompt = "The house </s> is"
    shown = api.predict(prompt=prompt, lang="en", max_new_tokens=2, api_name="/generate")
    literal = api.predict(prompt=prompt, lang="en", max_new_tokens=2, literal_specials=True, api_name="/generate")
    assert shown["text"].startswith("The house </s> is") and shown["input_ids"].count(1) == 2
    assert literal["input_ids"].count(1) == 1
