"""The lens in the CLI, the API and the page's callbacks and charts, checked against the reference."""

import json

import gradio as gr
import plotly.graph_objects as go
import pytest
import torch

from tests.reference import reference_logits
from xlm_demo.cli import main
from xlm_demo.inside import lens
from xlm_demo.page.lens import charts, events

TEXT = "Die Katze schläft, weil es"
LAYER_KEYS = {"layer", "entropy", "kl_to_final", "target", "subword_mass", "candidates"}


def reference_layer_probs(reference, ids, lang_id) -> list[torch.Tensor]:
    """softmax(pred_layer.proj(hidden_states[l])) at the last position, for every l."""
    tensor = torch.tensor([ids])
    with torch.no_grad():
        hidden = reference.transformer(
            input_ids=tensor, langs=torch.full_like(tensor, lang_id), output_hidden_states=True
        ).hidden_states
        return [reference.pred_layer.proj(h[0, -1]).softmax(-1) for h in hidden]


def check_payload(payload, reference, lang_id, top_k):
    """The issue's JSON, every number from the reference."""
    assert set(payload) == {"input_ids", "lang", "layers"}
    probs = reference_layer_probs(reference, payload["input_ids"], lang_id)
    assert [layer["layer"] for layer in payload["layers"]] == list(range(len(probs)))
    for layer, expected in zip(payload["layers"], probs, strict=True):
        assert set(layer) == LAYER_KEYS
        assert set(layer["target"]) == {"id", "prob", "rank"} and set(layer["subword_mass"]) == {"de", "en", "shared"}
        assert [c["id"] for c in layer["candidates"]] == expected.topk(top_k).indices.tolist()
        assert all(set(c) == {"id", "token", "prob"} for c in layer["candidates"])
        assert layer["candidates"][0]["prob"] == pytest.approx(float(expected.max()), abs=1e-5)
        assert layer["target"]["prob"] == pytest.approx(float(expected[layer["target"]["id"]]), abs=1e-5)


def test_cli_lens_json_matches_reference(capsys, tiny_model):
    folder, reference = tiny_model
    code = main(["lens", "--model", str(folder), "--lang", "de", "--top-k", "4", "--json", TEXT])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["lang"] == "de"
    check_payload(payload, reference, 0, 4)
    final_top = payload["layers"][-1]["candidates"][0]["id"]
    assert all(layer["target"]["id"] == final_top for layer in payload["layers"])  # the default target


def test_cli_lens_follows_a_chosen_target_and_prints_a_table(capsys, tiny_model):
    folder, reference = tiny_model
    assert main(["lens", "--model", str(folder), "--target", "42", "--json", "The house is"]) == 0
    payload = json.loads(capsys.readouterr().out)
    check_payload(payload, reference, 1, 10)
    assert {layer["target"]["id"] for layer in payload["layers"]} == {42}
    assert main(["lens", "--model", str(folder), "The house is"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("layer") and len(table) == 1 + len(payload["layers"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--target", "999999"], "the target must be a token id between 0 and"),
        (["--top-k", "0"], "top-k must be between"),
        (["--lang", "fr"], "language must be one of"),
    ],
)
def test_cli_lens_mistakes_are_one_line_and_exit_2(capsys, tiny_model, argv, message):
    code = main(["lens", "--model", str(tiny_model[0]), *argv, "x"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_api_lens_matches_reference(api, tiny_model):
    payload = api.predict(prompt=TEXT, lang="en", top_k=3, api_name="/lens")
    check_payload(payload, tiny_model[1], 1, 3)
    chosen = api.predict(prompt=TEXT, lang="en", top_k=3, target=42, api_name="/lens")
    assert {layer["target"]["id"] for layer in chosen["layers"]} == {42}


def test_api_lens_last_layer_equals_predict(api):
    lensed = api.predict(prompt=TEXT, lang="de", top_k=5, api_name="/lens")["layers"][-1]
    predicted = api.predict(prompt=TEXT, lang="de", top_k=5, api_name="/predict")
    assert [c["id"] for c in lensed["candidates"]] == [c["id"] for c in predicted["candidates"]]
    assert lensed["entropy"] == pytest.approx(predicted["entropy"], abs=1e-5)


def test_api_lens_bad_target_is_one_sentence(api):
    with pytest.raises(Exception, match="the target must be a token id"):
        api.predict(prompt=TEXT, lang="en", target=-3, api_name="/lens")


# The page's callbacks, without a browser.


def test_show_fills_every_view_from_the_current_text_and_continuation(engine, tiny_model):
    state = {"prompt": TEXT, "lang": "de", "appended": [42], "appended_langs": ["de"]}
    charts, scored = events.show(state, 1, engine=engine)  # the layers first, then the verdict
    update, heatmaps, summary, lines, rows, patching, patching_text, scoring, _, first = charts
    assert scoring == events.SCORING and first.scores is None
    *unchanged, verdict, ranks, view = scored
    assert all(value == gr.skip() for value in unchanged) and view.lenses == first.lenses
    assert view.input_ids == [*engine.encode(TEXT, "de").input_ids, 42]  # typed, then continued
    probs = reference_logits(tiny_model[1], view.input_ids, 0)[-1].softmax(-1)
    assert update["value"] == str(int(probs.argmax()))  # the target: the final top-1 under the page's id
    assert [value for _, value in update["choices"]] == [str(c.id) for c in view.columns]
    assert all(isinstance(f, go.Figure) for f in (heatmaps, lines, patching))
    assert len(rows) == 2 * (engine.model.config.n_layers + 1) and len(rows[0]) == len(events.table_headers(engine))
    assert "Target **" in summary and "from layer 1 on" in patching_text
    assert events.verdict_line(view.scores) in verdict and f"{len(view.input_ids) - 1} tokens" in verdict
    assert [sum(int(n) for n in bar.text) for bar in ranks.data] == [len(s.ranks) for s in view.scores.values()]


def test_retarget_and_repatch_need_no_model(engine):
    view = lens.lens_view(engine, engine.encode(TEXT, "en"))
    chosen = view.columns[2]
    _, summary, *_, switched = events.retarget(view, str(chosen.id), 0)
    assert f"Target **{chosen.token}**" in summary
    assert {r.target.id for seen in switched.lenses.values() for r in seen.layers} == {chosen.id}
    figure, text = events.repatch(view, 2)
    assert "from layer 2 on" in text and figure.layout.shapes[-1].x0 == 2
    assert events.retarget(None, "5", 0)[0] == gr.skip()
    with pytest.raises(gr.Error, match="one of the heatmap's tokens"):
        events.retarget(view, "-4", 0)


def test_the_patching_summary_gives_layer_ks_own_candidates_and_divergences(engine):
    view = lens.lens_view(engine, engine.encode(TEXT, "en"))
    n_layers = engine.model.config.n_layers
    for k in range(n_layers + 1):
        _, text = events.repatch(view, k)
        for line, (lang, patching) in zip(text.split("  \n"), view.patching.items(), strict=True):
            run = patching.runs[k]  # each run checked against the reference's layers in test_lens
            assert run.layer == k and f"from layer {k} on:**" in line
            top = ", ".join(f"{c.token} {c.prob:.0%}" for c in run.candidates[: events.SHOWN])
            assert f"on:** {top}" in line
            assert f"KL to {lang} alone {run.kl_to_own:.2f}, to {patching.other} alone {run.kl_to_other:.2f}" in line
    # From the last layer on nothing reaches the last position: the run is the text's own id alone.
    assert all(f"KL to {lang} alone 0.00" in line for lang, line in zip(view.patching, text.split("  \n"), strict=True))


@pytest.mark.parametrize(
    "perplexities, line",
    [
        ({"de": 48.2, "en": 310.0}, "Reads as German: perplexity 48 under de, 310 under en."),
        ({"de": 1400.0, "en": 3.24}, "Reads as English: perplexity 3.2 under en, 1,400 under de."),
        ({"de": 50.0, "en": 54.0}, "No clear verdict: perplexity 50 under de, 54 under en."),
        ({"de": None, "en": None}, "No verdict: the text has no token after the start token."),
    ],
)
def test_verdict_line(perplexities, line):
    scores = {lang: lens.TextScore(lang, p, []) for lang, p in perplexities.items()}
    assert events.verdict_line(scores) == line


# The charts: plain data in, figures out.


def test_heatmaps_show_each_id_over_the_same_tokens(engine):
    view = lens.lens_view(engine, engine.encode(TEXT, "en"))
    figure = charts.lens_heatmaps(view)
    assert [trace.type for trace in figure.data] == ["heatmap"] * len(engine.lang2id)
    for trace, lang in zip(figure.data, view.lenses, strict=True):
        assert len(trace.z) == engine.model.config.n_layers + 1 and len(trace.z[0]) == len(view.columns)
        assert trace.z[-1][0] ** 2 == pytest.approx(view.lenses[lang].layers[-1].target.prob)  # sqrt scale
    assert "<b>" in figure.layout.xaxis.ticktext[0]  # the target's column


def test_rank_counts_use_gltr_buckets():
    assert charts.rank_counts([1, 1, 2, 10, 11, 100, 101, 1000, 1001, 50_000]) == [2, 2, 2, 2, 2]
