"""The next-token section's events as plain functions: what each shows, and one sentence for every mistake."""

import json
import re

import gradio as gr
import plotly.graph_objects as go
import pytest
import torch

from tests.reference import reference_logits
from xlm_demo.engine import Engine
from xlm_demo.model.tokenizer import SPECIAL_ROLES
from xlm_demo.page.header import model_panel
from xlm_demo.page.next_token import events, side_by_side
from xlm_demo.page.state import PageSettings, from_url, new_state, share_query, with_literal

GREEDY_SETTINGS = {"top_k": 10, "sample": False, "temperature": 1.0, "sample_top_k": 0, "top_p": 1.0, "seed": 0}


@pytest.fixture(scope="module")
def engine(tiny_model):
    return Engine.load(str(tiny_model[0]), device="cpu")


def settings(prompt="The house is", lang="en", state=None, **overrides):
    """The page's settings and state, as the page passes them to every event."""
    values = {**GREEDY_SETTINGS, **overrides}
    page = PageSettings.read(prompt, lang, values["top_k"], values["sample"], values["temperature"],
                                       values["sample_top_k"], values["top_p"], values["seed"])  # fmt: skip
    return page, state or new_state(prompt)


def shown(view):
    figure, choices, html, timeline, rows, _status, state = view
    return {"figure": figure, "choices": choices, "html": html, "timeline": timeline, "rows": rows, "state": state}


def test_refresh_shows_the_reference_distribution(engine, tiny_model):
    view = shown(events.refresh(*settings(), engine=engine))
    ids = [row[1] for row in view["rows"]]
    probs = reference_logits(tiny_model[1], ids, 1)[-1].softmax(-1)
    assert isinstance(view["figure"], go.Figure)
    assert [int(value) for _, value in view["choices"]["choices"]] == probs.topk(10).indices.tolist()
    bars = view["figure"].data[0]
    assert list(bars.x) == pytest.approx(probs.topk(10).values.tolist(), abs=1e-5)
    assert len(view["figure"].data) == 1  # greedy: no "after sampling" overlay
    assert ids[0] == 1 and view["rows"][0][5] == ""  # the start token, unscored


def test_sampling_settings_add_the_reshaped_distribution(engine):
    view = shown(events.refresh(*settings(sample=True, temperature=0.7, sample_top_k=5), engine=engine))
    after = view["figure"].data[1]
    assert sum(after.x) <= 1 + 1e-6 and sum(after.x) > sum(view["figure"].data[0].x[:5])


def test_step_then_pick_then_undo(engine):
    first = shown(events.refresh(*settings(), engine=engine))
    top = int(first["choices"]["choices"][0][1])
    stepped = shown(events.step(*settings(state=first["state"]), engine=engine))
    assert stepped["state"]["appended"] == [top]
    assert stepped["rows"][-1][1] == top
    second = int(stepped["choices"]["choices"][3][1])
    picked = shown(events.pick(*settings(state=stepped["state"]), str(second), engine=engine))
    assert picked["state"]["appended"] == [top, second]
    assert picked["state"]["steps"][-1].rank == 4
    assert picked["html"].count("tok r") - picked["html"].count("legend") >= 2
    undone = shown(events.undo(*settings(state=picked["state"]), engine=engine))
    assert undone["state"]["appended"] == [top]
    reset = shown(events.reset(*settings(state=undone["state"]), engine=engine))
    assert reset["state"]["appended"] == []


def test_editing_the_text_starts_the_continuation_again(engine):
    stepped = shown(events.step(*settings(), engine=engine))
    edited = shown(events.refresh(*settings(prompt="Another text", state=stepped["state"]), engine=engine))
    assert edited["state"]["appended"] == [] and edited["state"]["prompt"] == "Another text"


def test_continue_streams_views_then_settles(engine, monkeypatch):
    monkeypatch.setattr(events, "STREAM_INTERVAL", 0.0)  # the chart with every token
    views = [shown(v[:-1]) for v in events.continue_(*settings(), 5, engine=engine)]
    assert [len(v["state"]["appended"]) for v in views] == [1, 2, 3, 4, 5, 5]
    assert all(v["timeline"] == gr.skip() for v in views[:-1])  # the timeline is drawn once, at the end
    assert all(isinstance(v["figure"], go.Figure) for v in views)
    greedy = [s.id for s in engine.generate(engine.encode("The house is", "en"), 5)]
    assert views[-1]["state"]["appended"] == greedy
    assert views[-1]["timeline"].data[0].x == (1, 2, 3, 4, 5)  # a bar per token


NEW_TOKEN = re.compile(r'<span class="tok [^"]*\bnew\b[^"]*"[^>]*>(.*?)</span>')


def test_continue_streams_each_token_alone_then_the_whole_view(engine, monkeypatch):
    """The text takes each token's span as it comes; the chart and the text are not sent again until the end."""
    monkeypatch.setattr(events, "STREAM_INTERVAL", 1e9)
    monkeypatch.setattr(events, "TOKEN_INTERVAL", 0.0)  # the tokens so far with every token
    yielded = list(events.continue_(*settings(), 5, engine=engine))
    views, streamed = [shown(v[:-1]) for v in yielded], [v[-1] for v in yielded]
    assert all(v["figure"] == gr.skip() and v["html"] == gr.skip() for v in views[:-1])
    assert [len(v["state"]["appended"]) for v in views] == [1, 2, 3, 4, 5, 5]
    tokens = [json.loads(value) for value in streamed[:-1]]
    typed = len(engine.encode("The house is", "en").input_ids)
    assert [t["from"] for t in tokens] == [typed] * 5  # every value: the continuation so far, from its start
    assert [len(t["spans"]) for t in tokens] == [1, 2, 3, 4, 5]
    final = views[-1]["html"].split('<div class="legend">')[0]
    assert [NEW_TOKEN.findall(span)[0] for span in tokens[-1]["spans"]] == NEW_TOKEN.findall(final)
    assert streamed[-1] == ""  # cleared at the end, so the next Continue's first token is news to the page


def test_compare_returns_both_ids(engine):
    figure, summary = side_by_side.compare("Guten Morgen", 5, new_state("Guten Morgen"), engine=engine)
    assert [trace.name for trace in figure.data] == ["German id", "English id"]
    assert "KL(de ‖ en)" in summary


def test_url_restores_text_language_and_continuation(engine):
    request = gr.Request(query_params={"prompt": "Heute ist", "lang": "de", "top_k": "7", "ids": "20,21,x,999999"})
    prompt, lang, top_k, literal, state = from_url(request, engine=engine)
    assert (prompt, lang, top_k, literal) == ("Heute ist", "de", 7, False)
    assert state["appended"] == [20, 21] and state["prompt"] == "Heute ist"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e: events.refresh(*settings(prompt="x" * 20_001), engine=e), "the limit is 20,000"),
        (lambda e: events.refresh(*settings(lang="fr"), engine=e), "language must be one of"),
        (lambda e: events.refresh(*settings(sample=True, top_p=0.0), engine=e), "top-p"),
        (lambda e: events.pick(*settings(), None, engine=e), "Pick one of the candidates"),
        (lambda e: events.pick(*settings(), "99999", engine=e), "no longer on the chart"),
    ],
)
def test_mistakes_become_one_sentence(engine, call, message):
    with pytest.raises(gr.Error, match=message):
        call(engine)


def test_fidelity_view_runs_both_ways(engine):
    faithful, defaults, summary, widget = side_by_side.fidelity(
        "Die Katze schläft", "de", 5, new_state(), engine=engine
    )
    assert faithful.data[0].x != defaults.data[0].x
    assert widget is None and "widget" not in summary  # no blank, no widget reading
    assert "<s>" in summary and "</s>" in summary


def test_export_holds_every_step_and_the_next_distribution(engine):
    import json

    stepped = shown(events.step(*settings(), engine=engine))
    update = events.export(*settings(state=stepped["state"]), engine=engine)
    with open(update["value"], encoding="utf-8") as file:
        record = json.load(file)
    assert record["input_ids"][-1] == stepped["state"]["appended"][0]
    assert len(record["steps"]) == 1 and record["steps"][0]["rank"] == 1
    assert record["next"]["input_ids"] == record["input_ids"]
    assert record["settings"]["candidates_shown"] == 10 and record["settings"]["sampling"]["temperature"] == 0


def test_share_link_restores_the_view(engine):
    stepped = shown(events.step(*settings(prompt="Es war"), engine=engine))
    query = share_query(stepped["state"], "de", 7)
    from urllib.parse import parse_qsl

    request = gr.Request(query_params=dict(parse_qsl(query[1:])))
    prompt, lang, top_k, _literal, state = from_url(request, engine=engine)
    assert (prompt, lang, top_k, state["appended"]) == ("Es war", "de", 7, stepped["state"]["appended"])


def test_inspector_names_the_word_of_every_piece(engine):
    view = shown(events.refresh(*settings(prompt="Die Regierung hat gestern", lang="de"), engine=engine))
    rows = view["rows"]
    assert rows[0][2] == "</s>" and rows[0][4] == "de (0)"
    words = [row[3] for row in rows[1:]]
    assert sorted(set(words), key=words.index) == ["Die", "Regierung", "hat", "gestern"]
    assert all(row[2].removesuffix("</w>") in row[3] for row in rows[1:])


def test_neutral_sampling_draws_no_second_distribution(engine):
    faithful, defaults, _, _ = side_by_side.fidelity("Die Katze schläft", "de", 5, new_state(), engine=engine)
    assert len(faithful.data) == 1 and len(defaults.data) == 1  # temperature 1, no top-k/top-p: nothing reshaped
    assert "&lt;/s&gt;" in faithful.layout.title.text


def test_a_keystroke_sends_only_what_changed(engine):
    first = shown(events.refresh(*settings(), engine=engine))
    typed = shown(events.refresh(*settings(prompt="The house is b", state=first["state"]), engine=engine))
    assert typed["timeline"] == gr.skip()  # no continuation before or after: nothing to redraw
    closed = shown(events.refresh(*settings(), inspector_open=False, engine=engine))
    assert closed["rows"] == gr.skip()  # the inspector is built only while open
    stepped = shown(events.step(*settings(), inspector_open=False, engine=engine))
    assert len(stepped["timeline"].data[0].x) == 1 and stepped["rows"] == gr.skip()


def test_chosen_tokens_keep_the_language_id_they_were_fed_with(engine):
    german = PageSettings.read("The house is", "en", 10, False, 1.0, 0, 1.0, 0, "de")
    stepped = shown(events.step(german, new_state("The house is"), engine=engine))
    state = stepped["state"]
    assert state["appended_langs"] == ["de"]
    assert stepped["rows"][-1][4] == "de (0)" and stepped["rows"][-2][4] == "en (1)"
    assert 'class="tok' in stepped["html"] and 'data-lang="de"' in stepped["html"]
    # The text switched to German later: the chosen token keeps the id it was fed with, and the link keeps it.
    switched = shown(events.refresh(*settings(lang="de", state=state), engine=engine))
    assert switched["rows"][-1][4] == "de (0)" and "data-lang" not in switched["html"]
    query = share_query(state, "en", 10)
    assert "langs=de" in query
    from urllib.parse import parse_qsl

    request = gr.Request(query_params=dict(parse_qsl(query[1:])))
    assert from_url(request, engine=engine)[-1]["appended_langs"] == ["de"]


def test_undo_after_a_token_under_another_id_drops_that_tokens_id_too(engine, tiny_model):
    german = PageSettings.read("The house is", "en", 10, False, 1.0, 0, 1.0, 0, "de")
    once = shown(events.step(german, new_state("The house is"), engine=engine))["state"]
    twice = shown(events.step(german, once, engine=engine))["state"]
    undone = shown(events.undo(german, twice, engine=engine))
    assert undone["state"]["appended"] == once["appended"] and undone["state"]["appended_langs"] == ["de"]
    # The next event reads the text under en and the one chosen token under de, as the reference does.
    english = PageSettings.read("The house is", "en", 10, False, 1.0, 0, 1.0, 0)
    after = shown(events.refresh(english, undone["state"], engine=engine))
    typed = engine.encode("The house is", "en").input_ids
    ids, langs = [*typed, *once["appended"]], [1] * len(typed) + [0]
    with torch.no_grad():
        logits = tiny_model[1](input_ids=torch.tensor([ids]), langs=torch.tensor([langs])).logits[0, -1]
    assert [int(value) for _, value in after["choices"]["choices"]] == logits.topk(10).indices.tolist()
    assert [row[4] for row in after["rows"]][-2:] == ["en (1)", "de (0)"]


def test_typed_specials_show_as_themselves_with_their_ids(engine):
    view = shown(events.refresh(*settings(prompt="Es war. </s> Once <special1>", lang="de"), engine=engine))
    rows = view["rows"]
    assert [row[1:4] for row in rows if row[1] < 14] == [
        [1, "</s>", "</s>"],  # the start token
        [1, "</s>", "</s>"],  # the typed one
        [5, "<special1>", "<special1>"],
    ]
    assert 'special" title="id 1 · ' in view["html"] and "&lt;/s&gt;<sub>1</sub>" in view["html"]
    assert "&lt;special1&gt;<sub>5</sub>" in view["html"]


def test_literal_setting_reads_the_characters_and_travels_with_the_link(engine):
    prompt = "Es war. </s> Once"
    state = with_literal(True, new_state(prompt))
    view = shown(events.refresh(*settings(prompt=prompt, lang="de", state=state), engine=engine))
    ids = [row[1] for row in view["rows"]]
    assert ids == engine.encode(prompt, "de", literal=True).input_ids and ids.count(1) == 1
    assert "<sub>1</sub>" not in view["html"]  # (its <, / and > are <unk> in this vocabulary)
    stepped = shown(events.step(*settings(prompt=prompt, lang="de", state=view["state"]), engine=engine))
    assert stepped["state"]["literal"] is True  # kept by a step, and by a reset
    assert shown(events.reset(*settings(prompt=prompt, state=stepped["state"]), engine=engine))["state"]["literal"]
    query = share_query(stepped["state"], "de", 7)
    from urllib.parse import parse_qsl

    assert "literal_specials=1" in query
    restored = from_url(gr.Request(query_params=dict(parse_qsl(query[1:]))), engine=engine)
    assert restored[3] is True and restored[4]["literal"] is True
    assert "literal_specials" not in share_query(new_state(prompt), "de", 7)


def test_compare_fidelity_and_export_follow_the_literal_setting(engine):
    prompt = "Die Katze </s> schläft"
    for literal in (False, True):
        state = with_literal(literal, new_state(prompt))
        _, summary = side_by_side.compare(prompt, 5, state, engine=engine)
        assert "KL(de ‖ en)" in summary
        _, _, fidelity, _ = side_by_side.fidelity(prompt, "de", 5, state, engine=engine)
        as_trained = fidelity.split("  \n")[0]
        assert as_trained.count("</s>") == (1 if literal else 2)
        update = events.export(*settings(prompt=prompt, lang="de", state=state), engine=engine)
        with open(update["value"], encoding="utf-8") as file:
            record = json.load(file)
        assert record["settings"]["literal_specials"] is literal
        assert (record["text"] == prompt) is not literal and record["text"].startswith("Die Katze")


def test_model_panel_lists_the_specials_with_ids_and_roles(engine):
    panel = model_panel(engine)
    for ids, name, role in SPECIAL_ROLES:
        assert f"`{name}` = {ids}, {role}" in panel
    assert "`<special1>` = 5, the mask token" in panel


def test_chart_labels_show_specials_as_written():
    from xlm_demo.engine import Candidate, Distribution
    from xlm_demo.page.next_token.charts import candidates_figure

    end = Candidate(id=1, token="</s>", piece="</s>", prob=0.4, logprob=-0.9, rank=1, sampling_prob=0.4)
    figure = candidates_figure(Distribution([1, 42], "en", 1.2, [end], 1.0))
    assert list(figure.layout.yaxis.ticktext) == ["&lt;/s&gt;"]  # Plotly would read </s> as a tag and show nothing
    assert "<b>&lt;/s&gt;</b>" in figure.data[0].hovertext[0]


def test_the_status_line_says_when_a_crowd_shares_the_model(engine):
    engine.scheduler.last_batch = 1
    alone = events.refresh(*settings(), engine=engine)[5]
    assert "Busy" not in alone
    engine.scheduler.last_batch = 12  # as after a batch of twelve people's events (this text runs nothing new)
    crowded = events.refresh(*settings(), engine=engine)[5]
    assert "Busy: " in crowded and "people typing at once" in crowded
