"""The next-token section's requests as plain functions: the view record each answers, and one sentence for every
mistake."""

import json
import re
from urllib.parse import parse_qsl

import pytest
import torch

from tests.reference import reference_logits
from xlm_demo.model.tokenizer import SPECIAL_ROLES
from xlm_demo.page.header import model_panel
from xlm_demo.page.next_token import actions, export, side_by_side
from xlm_demo.page.requests import ModelFacts, read_share_link, read_view_request
from xlm_demo.page.state import Chosen, PageState


def ask(engine, prompt="The house is", lang="en", after=None, **body):
    """The record a page's request answers: `after` is the record it shows now (its chosen tokens carried)."""
    carried = {"appended": after.appended, "appended_langs": after.appended_langs} if after else {}
    request = read_view_request(ModelFacts.of(engine), {"prompt": prompt, "lang": lang, "top_k": 10, **carried, **body})
    return actions.answer(engine, request)


def ids_of(record):
    return [c["id"] for c in record.candidates]


def new_spans(record):
    return [span for position, span in enumerate(record.spans, start=record.spans_from) if position >= record.typed]


def test_a_view_shows_the_reference_distribution(engine, tiny_model):
    record = ask(engine, table=True)
    ids = [row[1] for row in record.table]
    probs = reference_logits(tiny_model[1], ids, 1)[-1].softmax(-1)
    assert ids == record.ids and ids_of(record) == probs.topk(10).indices.tolist()
    assert [c["prob"] for c in record.candidates] == pytest.approx(probs.topk(10).values.tolist(), abs=1e-5)
    assert record.entropy == pytest.approx(float(-(probs * probs.log()).sum()), abs=1e-4)
    assert not record.reshaped  # greedy: no "after sampling" overlay
    assert ids[0] == 1 and record.table[0][5] == ""  # the start token, unscored
    assert record.spans_from == 1 and len(record.spans) == len(ids) - 1  # every position but the start token's


def test_sampling_settings_add_the_reshaped_distribution(engine):
    record = ask(engine, sampling={"sample": True, "temperature": 0.7, "top_k": 5})
    after = [c["sampling_prob"] for c in record.candidates]
    assert record.reshaped and sum(after) <= 1 + 1e-6 and sum(after) > sum(c["prob"] for c in record.candidates[:5])
    assert any("Sampling keeps" in note for note in record.notes)


def test_step_then_pick_then_undo_then_reset(engine, tiny_model):
    first = ask(engine)
    stepped = ask(engine, after=first, action="step")
    assert stepped.appended == [ids_of(first)[0]] and stepped.ids[-1] == ids_of(first)[0]
    second = ids_of(stepped)[3]
    picked = ask(engine, after=stepped, action="pick", choice=second)
    assert picked.appended == [ids_of(first)[0], second]
    assert [step["rank"] for step in picked.steps] == [1, 4]
    probs = reference_logits(tiny_model[1], picked.ids, 1).softmax(-1)  # (T, V): each position's next token
    entropies = [float(-(p * p.log()).sum()) for p in probs[-3:-1]]
    assert [step["entropy"] for step in picked.steps] == pytest.approx(entropies, abs=1e-4)  # what each was drawn from
    assert len(new_spans(picked)) == 2
    undone = ask(engine, after=picked, action="undo")
    assert undone.appended == [ids_of(first)[0]] and len(undone.steps) == 1
    assert ask(engine, after=undone, action="reset").appended == []


def test_editing_the_text_starts_the_continuation_again(engine):
    stepped = ask(engine, action="step")
    edited = ask(engine, prompt="Another text")  # the page sends no chosen tokens for a text they do not follow
    assert edited.appended == [] and edited.prompt == "Another text"
    carried = read_view_request(ModelFacts.of(engine), {"prompt": "Another text", "lang": "en",
                                "appended": stepped.appended, "appended_langs": stepped.appended_langs})  # fmt: skip
    assert actions.answer(engine, carried).appended == stepped.appended  # the page says what they follow


def test_continue_streams_a_record_per_token_then_the_whole_view(engine):
    body = {"prompt": "The house is", "lang": "en", "action": "continue", "n_tokens": 5}
    request = read_view_request(ModelFacts.of(engine), body)
    records = list(actions.continuation(engine, request))
    greedy = [s.id for s in engine.generate(engine.encode("The house is", "en"), 5)]
    assert [r.streaming for r in records] == [True] * 5 + [False]
    assert [len(r.appended) for r in records] == [1, 2, 3, 4, 5, 5]
    assert records[-1].appended == greedy
    typed = len(engine.encode("The house is", "en").input_ids)
    assert {r.spans_from for r in records} == {typed}  # every record: the continuation so far, from its start
    assert [len(r.spans) for r in records] == [1, 2, 3, 4, 5, 5]
    assert [len(r.steps) for r in records] == [1, 2, 3, 4, 5, 5]
    token = re.compile(r">([^<]*)</span>")
    assert [token.findall(span) for span in records[-2].spans] == [token.findall(span) for span in records[-1].spans]


def test_a_keystroke_sends_only_the_spans_that_changed(engine):
    first = ask(engine)
    drawn = {"ids": first.ids, "langs": first.langs, "typed": first.typed}
    typed = ask(engine, prompt="The house is big", drawn=drawn)
    whole = ask(engine, prompt="The house is big")
    assert typed.spans_from > 1 and typed.spans == whole.spans[typed.spans_from - 1 :]
    assert typed.table is None  # the table is built only while it is shown
    other = ask(engine, prompt="The house is big", lang="de", drawn=drawn)
    assert other.spans_from == 1  # under another id every position reads differently


def test_compare_returns_both_ids(engine):
    figure, summary = side_by_side.compare({"prompt": "Guten Morgen", "lang": "de", "top_k": 5}, engine=engine)
    assert [trace.name for trace in figure.data] == ["German id", "English id"]
    assert "KL(de ‖ en)" in summary


def test_url_restores_text_language_and_continuation(engine):
    link = {"prompt": "Heute ist", "lang": "de", "top_k": "7", "ids": "20,21,x,999999"}
    state, told = read_share_link(ModelFacts.of(engine), link)
    assert (state.prompt, state.lang, state.top_k, state.literal) == ("Heute ist", "de", 7, False)
    assert state.appended == [20, 21] and state.prompt == "Heute ist"
    assert told == [
        "From the link: ids takes whole numbers; 'x' is not one. It was left out.",
        "From the link: Token ids must be whole numbers from 0 to 461. It was left out.",
    ]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"prompt": "x" * 20_001}, "the limit is 20,000"),
        ({"lang": "fr"}, "Unknown language id 'fr'"),
        ({"sampling": {"sample": True, "top_p": 0.0}}, "top-p"),
        ({"top_k": -3}, "between 1 and 50"),
        ({"top_k": 10**9}, "between 1 and 50"),
        ({"appended": [99_999_999], "appended_langs": ["en"]}, "Token ids must be"),
        ({"appended": [5] * 600, "appended_langs": ["en"] * 600}, "do not fit"),
        ({"appended": [5], "appended_langs": []}, "differ in length"),
        ({"action": "pick", "choice": None}, "no longer on the chart"),
        ({"action": "pick", "choice": 99999}, "no longer on the chart"),
        ({"action": "explode"}, "Unknown action"),
    ],
)
def test_mistakes_become_one_sentence(engine, body, message):
    with pytest.raises(ValueError, match=message):
        ask(engine, **{"lang": "en", **body})


def test_fidelity_view_runs_both_ways(engine):
    faithful, defaults, summary, widget = side_by_side.fidelity(
        {"prompt": "Die Katze schläft", "lang": "de", "top_k": 5}, engine=engine
    )
    assert faithful.data[0].x != defaults.data[0].x
    assert widget is None and "widget" not in summary  # no blank, no widget reading
    assert "<s>" in summary and "</s>" in summary


def test_export_holds_every_step_and_the_next_distribution(engine):
    stepped = ask(engine, action="step")
    chosen = tuple(Chosen(i, lang) for i, lang in zip(stepped.appended, stepped.appended_langs, strict=True))
    record = export.exploration(PageState("The house is", "en", chosen=chosen), engine=engine)
    assert record["input_ids"][-1] == stepped.appended[0]
    assert len(record["steps"]) == 1 and record["steps"][0]["rank"] == 1
    assert record["steps"][0]["candidates"][0]["id"] == stepped.appended[0]  # the distribution it was chosen from
    assert record["next"]["input_ids"] == record["input_ids"]
    assert record["settings"]["candidates_shown"] == 10 and record["settings"]["sampling"]["temperature"] == 0


def test_share_link_restores_the_view(engine):
    stepped = ask(engine, prompt="Es war", lang="de", action="step")
    query = stepped.explore
    state, told = read_share_link(ModelFacts.of(engine), dict(parse_qsl(query[1:])))
    assert (state.prompt, state.lang, state.top_k, state.appended) == ("Es war", "de", 10, stepped.appended)
    assert told == []


def test_inspector_names_the_word_of_every_piece(engine):
    rows = ask(engine, prompt="Die Regierung hat gestern", lang="de", table=True).table
    assert rows[0][2] == "</s>" and rows[0][4] == "de (0)"
    words = [row[3] for row in rows[1:]]
    assert sorted(set(words), key=words.index) == ["Die", "Regierung", "hat", "gestern"]
    assert all(row[2].removesuffix("</w>") in row[3] for row in rows[1:])


def test_neutral_sampling_draws_no_second_distribution(engine):
    faithful, defaults, _, _ = side_by_side.fidelity(
        {"prompt": "Die Katze schläft", "lang": "de", "top_k": 5}, engine=engine
    )
    assert len(faithful.data) == 1 and len(defaults.data) == 1  # temperature 1, no top-k/top-p: nothing reshaped
    assert "&lt;/s&gt;" in faithful.layout.title.text


def test_chosen_tokens_keep_the_language_id_they_were_fed_with(engine):
    stepped = ask(engine, action="step", continue_lang="de", table=True)
    assert stepped.appended_langs == ["de"] and stepped.langs[-1] == "de"
    assert stepped.table[-1][4] == "de (0)" and stepped.table[-2][4] == "en (1)"
    assert 'data-lang="de"' in stepped.spans[-1]
    # The text switched to German later: the chosen token keeps the id it was fed with, and the link keeps it.
    switched = ask(engine, lang="de", after=stepped, table=True)
    assert switched.table[-1][4] == "de (0)" and not any("data-lang" in span for span in switched.spans)
    assert "langs=de" in stepped.explore
    assert read_share_link(ModelFacts.of(engine), dict(parse_qsl(stepped.explore[1:])))[0].appended_langs == ["de"]


def test_undo_after_a_token_under_another_id_drops_that_tokens_id_too(engine, tiny_model):
    once = ask(engine, action="step", continue_lang="de")
    twice = ask(engine, after=once, action="step", continue_lang="de")
    undone = ask(engine, after=twice, action="undo", continue_lang="de")
    assert undone.appended == once.appended and undone.appended_langs == ["de"]
    # The next request reads the text under en and the one chosen token under de, as the reference does.
    after = ask(engine, after=undone, table=True)
    typed = engine.encode("The house is", "en").input_ids
    ids, langs = [*typed, *once.appended], [1] * len(typed) + [0]
    with torch.no_grad():
        logits = tiny_model[1](input_ids=torch.tensor([ids]), langs=torch.tensor([langs])).logits[0, -1]
    assert ids_of(after) == logits.topk(10).indices.tolist()
    assert [row[4] for row in after.table][-2:] == ["en (1)", "de (0)"]


def test_typed_specials_show_as_themselves_with_their_ids(engine):
    record = ask(engine, prompt="Es war. </s> Once <special1>", lang="de", table=True)
    assert [row[1:4] for row in record.table if row[1] < 14] == [
        [1, "</s>", "</s>"],  # the start token
        [1, "</s>", "</s>"],  # the typed one
        [5, "<special1>", "<special1>"],
    ]
    html = "".join(record.spans)
    assert 'special" title="id 1 · ' in html and "&lt;/s&gt;<sub>1</sub>" in html
    assert "&lt;special1&gt;<sub>5</sub>" in html


def test_literal_setting_reads_the_characters_and_travels_with_the_link(engine):
    prompt = "Es war. </s> Once"
    record = ask(engine, prompt=prompt, lang="de", literal=True)
    assert record.ids == engine.encode(prompt, "de", literal=True).input_ids and record.ids.count(1) == 1
    assert "<sub>1</sub>" not in "".join(record.spans)  # (its <, / and > are <unk> in this vocabulary)
    stepped = ask(engine, prompt=prompt, lang="de", after=record, literal=True, action="step")
    assert stepped.literal is True  # kept by a step, and by a reset
    assert ask(engine, prompt=prompt, after=stepped, literal=True, action="reset").literal
    chosen = tuple(Chosen(i, lang) for i, lang in zip(stepped.appended, stepped.appended_langs, strict=True))
    query = PageState(prompt, "de", 7, literal=True, chosen=chosen).share_query()
    assert "literal_specials=1" in query
    restored, _ = read_share_link(ModelFacts.of(engine), dict(parse_qsl(query[1:])))
    assert restored.literal is True and restored.appended == stepped.appended
    assert "literal_specials" not in PageState(prompt, "de", 7).share_query()


def test_compare_fidelity_and_export_follow_the_literal_setting(engine):
    prompt = "Die Katze </s> schläft"
    for literal in (False, True):
        fields = {"prompt": prompt, "lang": "de", "top_k": 5, "literal": literal}
        _, summary = side_by_side.compare(fields, engine=engine)
        assert "KL(de ‖ en)" in summary
        _, _, fidelity, _ = side_by_side.fidelity(fields, engine=engine)
        as_trained = fidelity.split("  \n")[0]
        assert as_trained.count("</s>") == (1 if literal else 2)
        json_file, _ = export.files(*export.exported({**fields, "top_k": 10}, engine=engine))
        with open(json_file["value"], encoding="utf-8") as file:
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


def test_the_status_line_says_when_a_crowd_shares_the_model(engine, monkeypatch):
    monkeypatch.setattr(engine.scheduler, "last_batch", 1)
    assert not any("Busy" in note for note in ask(engine).notes)
    monkeypatch.setattr(engine.scheduler, "last_batch", 12)  # as after a batch of twelve people's requests
    assert any("Busy: 12 people typing at once" in note for note in ask(engine).notes)


@pytest.mark.parametrize(
    "body, accepted",
    [
        ({"top_k": 1}, True),
        ({"top_k": 50}, True),  # the slider's maximum
        ({"top_k": 0}, False),
        ({"top_k": 51}, False),
        ({"prompt": "x" * 20_000}, True),
        ({"prompt": "x" * 20_001}, False),
        ({"action": "continue", "n_tokens": 1}, True),
        ({"action": "continue", "n_tokens": 64}, True),  # the slider's maximum
        ({"action": "continue", "n_tokens": 0}, False),
        ({"action": "continue", "n_tokens": 65}, False),
        ({"appended": [461], "appended_langs": ["en"]}, True),  # the vocabulary's last id
        ({"appended": [462], "appended_langs": ["en"]}, False),  # its size
        ({"appended": [-1], "appended_langs": ["en"]}, False),
    ],
)
def test_each_limit_takes_its_largest_value_and_refuses_the_next(engine, body, accepted):
    assert engine.model.config.vocab_size == 462  # the test checkpoint's, as the ids above assume
    request = {"prompt": "The house is", "lang": "en", **body}
    if accepted:
        assert read_view_request(ModelFacts.of(engine), request).state.prompt == request["prompt"]
    else:
        with pytest.raises(ValueError):
            read_view_request(ModelFacts.of(engine), request)


def test_sampling_keeps_its_own_top_k_not_the_candidates_shown(engine, tiny_model):
    record = ask(engine, top_k=10, sampling={"sample": True, "temperature": 1, "top_k": 3})
    probs = reference_logits(tiny_model[1], record.ids, 1)[-1].softmax(-1)
    kept = probs.topk(3).values / probs.topk(3).values.sum()
    assert len(record.candidates) == 10
    assert [c["sampling_prob"] for c in record.candidates[:3]] == pytest.approx(kept.tolist(), abs=1e-5)
    assert [c["sampling_prob"] for c in record.candidates[3:]] == [0.0] * 7


def test_a_chosen_token_typed_into_the_text_is_drawn_again_as_typed(engine):
    stepped = ask(engine, action="step")
    word = stepped.steps[0]["token"]
    assert not word.endswith("@@")  # a whole word: typing it gives the same positions
    drawn = {"ids": stepped.ids, "langs": stepped.langs, "typed": stepped.typed}
    typed = ask(engine, prompt=f"The house is {word}", drawn=drawn)
    assert typed.ids == stepped.ids and typed.typed == stepped.typed + 1
    assert typed.spans_from <= stepped.typed  # the chosen token's span is sent again ...
    was_chosen = typed.spans[stepped.typed - typed.spans_from]
    assert word in was_chosen and " new" not in re.search(r'class="([^"]*)"', was_chosen).group(1)  # ... as typed


def test_a_follower_gets_every_span_under_its_own_language_id(engine, tiny_model):
    chosen = ask(engine, appended=[247], appended_langs=["de"])  # a German token after an English text
    drawn = {"ids": chosen.ids, "langs": chosen.langs, "typed": chosen.typed}
    keystroke = ask(engine, appended=[247], appended_langs=["de"], drawn=drawn)
    assert keystroke.spans_from > 1  # nothing changed: the page keeps what it draws
    whole = keystroke.with_every_span(engine)
    assert whole.spans_from == 1 and len(whole.spans) == len(whole.ids) - 1
    langs = torch.tensor([[1] * (len(whole.ids) - 1) + [0]])  # each position's own id: English, then German
    with torch.no_grad():
        probs = tiny_model[1](input_ids=torch.tensor([whole.ids]), langs=langs).logits[0].softmax(-1)
    shown = float(re.search(r"p = ([\d.]+)", whole.spans[-1]).group(1))
    assert shown == pytest.approx(float(probs[-2, 247]), abs=6e-4)  # printed to three places
    assert 'data-lang="de"' in whole.spans[-1] and "language id de" in whole.spans[-1]


def test_a_text_longer_than_the_models_positions_says_so(engine):
    assert engine.max_positions == 64
    long = ask(engine, prompt="The house is big " * 40)
    assert "The text was longer than 64 positions: only its last tokens are used." in long.notes
    assert len(long.ids) == 64 and not any("longer than" in note for note in ask(engine).notes)
