"""The command line: JSON shapes checked against the reference, and every mistake one line with exit 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.checkpoints import write_hub_checkpoint
from tests.reference import reference_logits, reference_text_logprob
from xlm_demo.cli import main

TEXT = "Die Katze schläft, weil es kalt ist."


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-model")
    return path, write_hub_checkpoint(path)


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_tokenize_json(capsys, checkpoint):
    code, out, _ = cli(capsys, "tokenize", "--model", str(checkpoint[0]), "--lang", "de", "--json", TEXT)
    payload = json.loads(out)
    assert code == 0
    assert payload["input_ids"][0] == 1 and payload["tokens"][0] == "</s>"
    assert len(payload["input_ids"]) == len(payload["tokens"])


def test_predict_json_matches_reference(capsys, checkpoint):
    folder, reference = checkpoint
    code, out, _ = cli(capsys, "predict", "--model", str(folder), "--lang", "de", "--top-k", "4", "--json", TEXT)
    payload = json.loads(out)
    assert code == 0
    probs = reference_logits(reference, payload["input_ids"], 0)[-1].softmax(-1)
    assert [c["id"] for c in payload["candidates"]] == probs.topk(4).indices.tolist()
    for candidate in payload["candidates"]:
        assert candidate["prob"] == pytest.approx(float(probs[candidate["id"]]), abs=1e-5)
        assert set(candidate) >= {"id", "token", "prob", "logprob"}
    assert payload["lang"] == "de" and payload["entropy"] > 0


def test_score_json(capsys, checkpoint):
    code, out, _ = cli(capsys, "score", "--model", str(checkpoint[0]), "--json", "The house is old.")
    payload = json.loads(out)
    assert code == 0
    assert payload["vocab_size"] > 14
    assert payload["tokens"][0]["prob"] is None
    assert all(0 < t["prob"] <= 1 and t["rank"] >= 1 for t in payload["tokens"][1:])
    assert [t["id"] for t in payload["tokens"]] == payload["input_ids"]


def test_generate_json_greedy_matches_reference(capsys, checkpoint):
    folder, reference = checkpoint
    code, out, _ = cli(capsys, "generate", "--model", str(folder), "--max-new-tokens", "5", "--json", "The house")
    payload = json.loads(out)
    assert code == 0
    ids = list(payload["input_ids"])
    for _ in range(5):
        ids.append(int(reference_logits(reference, ids, 1)[-1].argmax()))
    assert payload["new_ids"] == ids[len(payload["input_ids"]) :]
    assert len(payload["steps"]) == 5 and payload["seed"] is None
    assert isinstance(payload["text"], str) and payload["text"]


def test_generate_sampled_reports_its_seed(capsys, checkpoint):
    args = ["generate", "--model", str(checkpoint[0]), "--max-new-tokens", "6", "--temperature", "1", "--json", "Es"]
    first = json.loads(cli(capsys, *args, "--seed", "3")[1])
    again = json.loads(cli(capsys, *args, "--seed", str(first["seed"]))[1])
    assert first["new_ids"] == again["new_ids"]
    unseeded = json.loads(cli(capsys, *args)[1])
    assert isinstance(unseeded["seed"], int)


def test_generate_table_marks_the_continuation_and_prints_the_seed(capsys, checkpoint):
    args = ["generate", "--model", str(checkpoint[0]), "--lang", "de", "--max-new-tokens", "4"]
    greedy = json.loads(cli(capsys, *args, "--json", "Die Katze")[1])
    text, chosen, header, *steps = cli(capsys, *args, "Die Katze")[1].splitlines()
    assert text == "Die Katze ▸ " + greedy["text"].removeprefix("Die Katze").lstrip()
    assert chosen == "greedy; new tokens under the de id" and header.split() == ["step", "prob", "rank", "token"]
    assert [row.split()[3] for row in steps] == [s["token"] for s in greedy["steps"]]
    table = cli(capsys, *args, "--temperature", "1", "Die Katze")[1]
    seed = int(table.splitlines()[1].removeprefix("sampled with seed ").split()[0])
    assert f"(--seed {seed} repeats it)" in table
    assert cli(capsys, *args, "--temperature", "1", "--seed", str(seed), "Die Katze")[1] == table


def test_fill_json_matches_reference(capsys, checkpoint):
    folder, reference = checkpoint
    text = "Die Katze schläft auf dem <special1> , weil es kalt ist ."
    argv = ["fill", "--model", str(folder), "--lang", "de", "--top-k", "4", "--candidates", "Ofen,Regenschirm"]
    code, out, _ = cli(capsys, *argv, "--json", text)
    payload = json.loads(out)
    assert code == 0
    assert set(payload) == {"input_ids", "lang", "blank", "candidates"} and payload["lang"] == "de"
    ids, blank = payload["input_ids"], payload["blank"]
    assert ids[blank] == 5 and ids.count(5) == 1
    assert all(set(c) == {"text", "ids", "logprob", "prob"} for c in payload["candidates"])
    assert {"Ofen", "Regenschirm"} <= {c["text"] for c in payload["candidates"]}  # given words always listed
    assert len(payload["candidates"]) >= 6 and sum(c["prob"] for c in payload["candidates"]) == pytest.approx(1)
    logprobs = [c["logprob"] for c in payload["candidates"]]
    assert logprobs == sorted(logprobs, reverse=True)
    for candidate in payload["candidates"]:
        filled = [*ids[:blank], *candidate["ids"], *ids[blank + 1 :]]
        assert candidate["logprob"] == pytest.approx(reference_text_logprob(reference, filled, 0), abs=1e-5)
    table = cli(capsys, *argv, text)[1]
    assert table.splitlines()[1].endswith(payload["candidates"][0]["text"])


def test_long_text_says_truncated(capsys, checkpoint):
    code, out, err = cli(capsys, "tokenize", "--model", str(checkpoint[0]), "--json", "word " * 200)
    assert code == 0
    assert json.loads(out)["truncated"] is True
    assert "keeping its last" in err


def test_a_text_over_the_pages_limit_is_read_and_keeps_its_last_tokens(capsys):
    """The command line has no 20,000-character limit (the page's and the API's, docs/cli.md says why)."""
    text = "Es war einmal ein König. " * 1200  # 30,000 characters
    code, out, err = cli(capsys, "tokenize", "--model", BUNDLED, "--lang", "de", "--json", text)
    payload = json.loads(out)
    assert code == 0 and payload["truncated"] is True and len(payload["input_ids"]) == 512
    assert "keeping its last 511" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "--lang", "fr", "x"], "language must be one of"),
        (["predict", "--top-k", "0", "x"], "top-k must be between"),
        (["predict", "--top-k", "many", "x"], "invalid int value"),
        (["generate", "--max-new-tokens", "100000", "x"], "max new tokens"),
        (["generate", "--temperature", "-1", "x"], "temperature"),
        (["generate", "--top-p", "2", "x"], "top-p"),
        (["generate", "--greedy", "--temperature", "0.5", "x"], "--greedy cannot be combined"),
        (["predict", "--device", "cuda", "x"], "no CUDA GPU"),
        (["predict", "--device", "toaster", "x"], "is not a device"),
        (["predict", "--dtype", "float16", "--device", "cpu", "x"], "float16 is for GPUs"),
        (["predict"], "the following arguments are required"),
        (["fly", "x"], "invalid choice"),
        (["attention", "--position", "900", "x"], "position must be between 0 and"),
        (["attribute", "--target", "nonexistent", "x"], "target must be a token id below"),
        (["attribute", "--method", "lime", "x"], "invalid choice"),
        (["attribute", "--method", "integrated_gradients", "--steps", "0", "x"], "steps must be between 1 and 64"),
        (["fill", "x"], "The text has no blank: write <special1> where a word is missing."),
        (["fill", "a <special1> b <special1>"], "The text has 2 blanks"),
        (["fill", "--literal-specials", "a <special1>"], "leave out --literal-specials"),
        (["fill", "--top-k", "51", "a <special1>"], "top-k must be between 1 and 50"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(capsys, checkpoint, argv, message):
    with_model = [argv[0], "--model", str(checkpoint[0]), *argv[1:]] if argv[0] != "fly" else argv
    try:
        code = main(with_model)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "model.safetensors").write_bytes(b"garbage"), "model.safetensors is not a readable"),
        (lambda p: (p / "config.json").unlink(), "neither config.json"),
        (lambda p: (p / "vocab.json").write_text("[1, 2]"), "vocab.json should hold a JSON object"),
    ],
)
def test_broken_checkpoint_is_one_line_in_a_real_process(tmp_path, damage, message):
    write_hub_checkpoint(tmp_path)
    damage(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "xlm_demo", "predict", "--model", str(tmp_path), "Hallo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.stderr


def test_missing_checkpoint_in_a_real_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "xlm_demo", "score", "--model", str(tmp_path / "absent"), "Hallo"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "Traceback" not in result.stderr


def test_app_py_serves_the_page_in_a_real_process(checkpoint):
    """What `make run` starts: app.py loads the model once and answers on the port it was given."""
    import time
    import urllib.request

    from benchmarks.server_process import free_port

    port = free_port()
    app = subprocess.Popen(
        [sys.executable, "app.py", "--model", str(checkpoint[0]), "--port", str(port)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and app.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status == 200 and "XLM English/German explorer" in response.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"app.py did not serve: {app.stdout.read() if app.poll() is not None else 'timed out'}")
    finally:
        app.terminate()
        app.wait(timeout=30)


def test_without_a_model_offline_the_bundled_one_answers(capsys):
    """No --model and no network: predict, score and generate run on assets/xlm-mini-ende, and say so."""
    code, out, err = cli(capsys, "generate", "--lang", "de", "--max-new-tokens", "6", "--json", "Das Wetter ist")
    assert code == 0
    assert "Running the small bundled model" in err and "HF_HUB_OFFLINE is set" in err
    assert json.loads(out)["text"].startswith("Das Wetter ist")
    for command in ("predict", "score"):
        assert cli(capsys, command, "--lang", "en", "--json", "The weather")[0] == 0


def test_generate_continues_under_another_language_id(capsys, checkpoint):
    folder, reference = checkpoint
    argv = ["generate", "--model", str(folder), "--max-new-tokens", "4", "--continue-lang", "de", "--json", "The house"]
    code, out, _ = cli(capsys, *argv)
    payload = json.loads(out)
    assert code == 0 and payload["lang"] == "en" and payload["continue_lang"] == "de"
    ids = list(payload["input_ids"])
    langs = [1] * len(ids)
    for _ in range(4):
        with torch.no_grad():
            logits = reference(input_ids=torch.tensor([ids]), langs=torch.tensor([langs])).logits[0, -1]
        ids.append(int(logits.argmax()))
        langs.append(0)  # de: every new token is fed with the German id
    assert payload["new_ids"] == ids[len(payload["input_ids"]) :]
    code, _, err = cli(capsys, *argv[:-4], "--continue-lang", "fr", "The house")
    assert code == 2 and "language must be one of" in err


BUNDLED = str(Path(__file__).resolve().parents[2] / "assets" / "xlm-mini-ende")


def test_typed_specials_are_their_ids_unless_literal(capsys):
    """The issue's example: `a <special1> b` is a, the mask token, b; with --literal-specials, characters as before."""
    code, out, _ = cli(capsys, "tokenize", "--model", BUNDLED, "--json", "a <special1> b </s>")
    payload = json.loads(out)
    assert code == 0 and payload["tokens"] == ["</s>", "a</w>", "<special1>", "b</w>", "</s>"]
    assert payload["input_ids"][2] == 5 and payload["input_ids"][-1] == 1
    code, out, _ = cli(capsys, "tokenize", "--model", BUNDLED, "--literal-specials", "--json", "a <special1> b")
    literal = json.loads(out)["input_ids"]
    assert code == 0 and 5 not in literal and literal.count(1) == 1
    code, out, _ = cli(capsys, "tokenize", "--model", BUNDLED, "a <special1> b")
    assert out.splitlines()[2].split() == ["5", "<special1>"]


@pytest.mark.parametrize("literal", [[], ["--literal-specials"]])
def test_predict_and_score_take_the_setting(capsys, literal):
    args = ["--model", BUNDLED, "--lang", "de", "--json", *literal, "Es war einmal. </s>"]
    _, predicted, _ = cli(capsys, "predict", *args)
    _, scored, _ = cli(capsys, "score", *args)
    ids = json.loads(predicted)["input_ids"]
    assert json.loads(scored)["input_ids"] == ids and (ids[-1] == 1) is not bool(literal)


def test_generated_text_tokenizes_back_to_the_same_ids(capsys):
    """The round trip a person makes: copy the continuation's text back in, and the model is fed the same ids."""
    code, out, _ = cli(
        capsys, "generate", "--model", BUNDLED, "--lang", "de", "--max-new-tokens", "24", "--json", "Linux </s> Das"
    )
    generated = json.loads(out)
    assert code == 0 and 1 in generated["new_ids"]
    _, out, _ = cli(capsys, "tokenize", "--model", BUNDLED, "--lang", "de", "--json", generated["text"])
    assert json.loads(out)["input_ids"] == generated["input_ids"] + generated["new_ids"]


def test_attention_json_matches_reference(capsys, checkpoint):
    folder, reference = checkpoint
    code, out, _ = cli(capsys, "attention", "--model", str(folder), "--lang", "en", "--position", "4", "--json", TEXT)
    payload = json.loads(out)
    assert code == 0 and payload["position"] == 4 and payload["lang"] == "en"
    ids = torch.tensor([payload["input_ids"]])
    with torch.no_grad():
        output = reference(input_ids=ids, langs=torch.ones_like(ids), output_attentions=True)
    expected = torch.stack(output.attentions)[:, 0, :, 4, :5]
    torch.testing.assert_close(torch.tensor(payload["weights"]), expected, atol=1e-5, rtol=0)


def test_attention_table_names_each_head(capsys, checkpoint):
    code, out, _ = cli(capsys, "attention", "--model", str(checkpoint[0]), "--lang", "de", TEXT)
    assert code == 0 and out.startswith("query: position") and "layer 2 head 4:" in out


def test_attribute_json_and_table(capsys, checkpoint):
    folder = str(checkpoint[0])
    args = ["attribute", "--model", folder, "--method", "integrated_gradients", "--steps", "32"]
    code, out, _ = cli(capsys, *args, "--json", TEXT)
    payload = json.loads(out)
    assert code == 0 and payload["completeness_error"] < 0.05 and len(payload["tokens"]) == len(payload["input_ids"])
    code, out, _ = cli(capsys, *args, "--contrast", "3", TEXT)
    assert code == 0 and " rather than <unk>: f = " in out.splitlines()[0]


def test_a_proxy_that_is_no_address_is_refused_before_the_model_loads(capsys, monkeypatch):
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.1")
    code, _, err = cli(capsys, "serve", "--model", "/nowhere/at/all", "--forwarded-allow-ips", "10.0.0.1,nginx")
    assert code == 2 and err.startswith("error: --forwarded-allow-ips takes addresses and networks: ")
    assert "'nginx'" in err and err.count("\n") == 1  # the proxies, not the missing model, are told
    assert os.environ["FORWARDED_ALLOW_IPS"] == "127.0.0.1"  # nothing was served, nothing changed
