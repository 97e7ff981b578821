"""Any XLM causal checkpoint: an English/French one (en = 0, fr = 1) against the reference, and what follows lang2id."""

import json

import pytest
import torch

from tests.checkpoints import ENFR, write_hub_checkpoint
from tests.reference import folder_tokenizer, reference_logits, trained_ids
from xlm_demo.cli import main
from xlm_demo.engine import Engine
from xlm_demo.model import languages
from xlm_demo.model.subwords import WORD_LISTS, read_words, subword_masks
from xlm_demo.page.header import model_panel
from xlm_demo.page.next_token import charts, side_by_side
from xlm_demo.page.requests import read_share_link

FRENCH = [
    "L'homme qu'il a vu n'est pas venu aujourd'hui.",
    "« Je ne sais pas », dit-elle\u00a0; « et toi\u00a0? »",
    "Où vas-tu\u00a0? Quelle surprise\u00a0!",
    "Qu'est-ce que c'est ? C'est l'été !",
    "L’œuvre coûte 4,50\u00a0€, soit 20\u00a0% de plus qu’hier…",
    "Jusqu'à présent, l'Hôtel-Dieu n'a jamais fermé : «\u00a0incroyable\u00a0»\u00a0!",
    "Le cœur de l'Assemblée nationale bat-il encore ?",
]
TEXTS = {"en": "The weather in Paris is cold and grey in November.", "fr": FRENCH[0]}


@pytest.fixture(scope="module")
def enfr_engine(enfr_model):
    return Engine.load(str(enfr_model[0]), device="cpu")


@pytest.fixture(scope="module")
def reference_tokenizer(enfr_model):
    return folder_tokenizer(enfr_model[0], ENFR)


def test_languages_come_from_the_checkpoint(enfr_engine):
    assert enfr_engine.lang2id == {"en": 0, "fr": 1}
    assert enfr_engine.tokenizer.langs == ("en", "fr")
    assert languages.choices(enfr_engine.lang2id) == [("English", "en"), ("French", "fr")]


@pytest.mark.parametrize("text", FRENCH)
def test_french_tokenization_matches_reference(enfr_engine, reference_tokenizer, text):
    pieces = reference_tokenizer._tokenize(text, lang="fr")
    assert enfr_engine.tokenizer.tokenize(text, "fr") == pieces
    assert enfr_engine.encode(text, "fr").input_ids == trained_ids(reference_tokenizer, text, "fr")


def test_french_rules_are_not_english_rules(enfr_engine):
    # Moses splits French élisions after the apostrophe and English ones before it.
    assert "l'@@" not in enfr_engine.tokenizer.moses_tokens("l'homme", "en")
    assert enfr_engine.tokenizer.moses_tokens("l'homme aujourd'hui", "fr")[:2] == ["l'", "homme"]
    assert enfr_engine.tokenizer.moses_tokens("l'homme", "en") == ["l", "'homme"]


@pytest.mark.parametrize("text_lang", ["en", "fr"])
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_probabilities_match_reference_under_both_ids(enfr_engine, enfr_model, reference_tokenizer, text_lang, lang):
    text = TEXTS[text_lang]
    ids = trained_ids(reference_tokenizer, text, lang)
    expected = reference_logits(enfr_model[1], ids, ENFR[lang])[-1].softmax(-1)  # (V,)
    distribution = enfr_engine.predict(text, lang, top_k=20)
    top = expected.topk(20)
    assert distribution.input_ids == ids
    assert [c.id for c in distribution.candidates] == top.indices.tolist()
    assert max(abs(c.prob - p) for c, p in zip(distribution.candidates, top.values.tolist(), strict=True)) < 1e-5


def test_scores_match_reference_in_french(enfr_engine, enfr_model, reference_tokenizer):
    ids = trained_ids(reference_tokenizer, FRENCH[1], "fr")
    logprobs = reference_logits(enfr_model[1], ids, ENFR["fr"]).log_softmax(-1)  # (T, V)
    encoded, scores = enfr_engine.score(FRENCH[1], "fr")
    assert encoded.input_ids == ids
    for position in range(1, len(ids)):
        assert scores[position].logprob == pytest.approx(float(logprobs[position - 1, ids[position]]), abs=1e-5)


def test_compare_reports_english_and_french(enfr_engine):
    comparison = enfr_engine.compare(FRENCH[0], top_k=5)
    assert set(comparison.distributions) == {"en", "fr"} and set(comparison.kl) == {"en||fr", "fr||en"}
    for mass in comparison.subword_mass.values():
        assert set(mass) == {"en", "fr", "shared"} and 0 < sum(mass.values()) <= 1 + 1e-6
    figure, summary = side_by_side.compare({"prompt": FRENCH[0], "lang": "fr", "top_k": 5}, engine=enfr_engine)
    assert "French id: " in summary and "on English-only subwords" in summary and "on French-only," in summary
    legend = [trace.name for trace in figure.data]
    assert legend == ["English id", "French id"]


def test_word_lists_sort_english_and_french_subwords(enfr_engine, reference_tokenizer):
    masks = subword_masks(enfr_engine.tokenizer, ("en", "fr"))
    used = {
        lang: {
            i
            for word in read_words(WORD_LISTS / f"{lang}.txt")
            for i in reference_tokenizer.convert_tokens_to_ids(reference_tokenizer._tokenize(word, lang=lang))
        }
        - {3}  # <unk>
        for lang in ("en", "fr")
    }
    expected = {"en": used["en"] - used["fr"], "fr": used["fr"] - used["en"], "shared": used["en"] & used["fr"]}
    for kind, ids in expected.items():
        assert ids and set(masks[kind].nonzero()[:, 0].tolist()) == ids, kind


def test_page_text_names_the_checkpoints_languages(enfr_engine):
    panel = model_panel(enfr_engine)
    assert "English (`en`) = 0, French (`fr`) = 1" in panel and "English and French" in panel
    assert "German" not in panel


def test_fidelity_view_runs_french_text_both_ways(enfr_engine, reference_tokenizer):
    faithful, defaults, summary, _ = side_by_side.fidelity(
        {"prompt": FRENCH[0], "lang": "fr", "top_k": 5}, engine=enfr_engine
    )
    ids = trained_ids(reference_tokenizer, FRENCH[0], "fr")
    assert f"`{' '.join(enfr_engine.tokenizer.display(i) for i in ids)}`" in summary  # French rules, the French id
    assert faithful.data[0].marker.color == languages.colour("fr")
    assert "**transformers' defaults:** `<s>" in summary and len(defaults.data[0].y) == 5


def test_share_link_and_url_follow_lang2id(enfr_engine):
    assert read_share_link(enfr_engine, {"prompt": "Bonjour", "lang": "fr"})[0].lang == "fr"
    german, told = read_share_link(enfr_engine, {"prompt": "Hallo", "lang": "de"})  # not a language of this checkpoint
    assert german.lang == "en" and told == [
        "From the link: Unknown language id 'de'; this model has en, fr. It was left out."
    ]


def test_cli_lang_follows_the_checkpoint(enfr_model, capsys):
    assert main(["tokenize", "--model", str(enfr_model[0]), "--lang", "fr", "--json", "l'homme"]) == 0
    assert json.loads(capsys.readouterr().out)["lang"] == "fr"
    assert main(["predict", "--model", str(enfr_model[0]), "--lang", "de", "Hallo"]) == 2
    assert "language must be one of en (English), fr (French), got 'de'" in capsys.readouterr().err


def test_a_language_without_moses_rules_is_one_sentence(tmp_path):
    write_hub_checkpoint(tmp_path, lang2id={"ar": 0, "en": 1})
    engine = Engine.load(str(tmp_path), device="cpu")
    assert engine.predict("The weather", "en").candidates
    with pytest.raises(ValueError, match=r"sacremoses has no Moses rules for Arabic \('ar'\)"):
        engine.predict("مرحبا", "ar")


def test_three_languages_compare_each_pair(tmp_path):
    write_hub_checkpoint(tmp_path, lang2id={"de": 0, "en": 1, "fr": 2})
    engine = Engine.load(str(tmp_path), device="cpu")
    comparison = engine.compare("Le temps", top_k=5)
    assert len(comparison.kl) == 6
    figure = charts.comparison_figure(comparison)
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert [t.split("KL(")[1].split(")")[0] for t in titles] == ["de‖en", "de‖fr", "en‖fr"]
    assert sorted({trace.name for trace in figure.data}) == ["English id", "French id", "German id"]
    assert set(next(iter(comparison.subword_mass.values()))) == {"de", "en", "fr", "shared"}
    assert torch.isfinite(torch.tensor(list(comparison.kl.values()))).all()
