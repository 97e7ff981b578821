"""The tokenizer against transformers' XLMTokenizer._tokenize(text, lang=...), on test-made and real BPE files."""

import random

import pytest
from transformers import XLMTokenizer

from tests.bpe_files import (
    BILINGUAL_CORPUS,
    learn_codes,
    real_bpe_dir,
    real_vocab_json,
    vocab_from_codes,
    write_codes,
    write_vocab_json,
)
from xlm_demo.bpe import FastBPE, PythonBPE
from xlm_demo.tokenizer import Tokenizer, replace_unicode_punct, vocab_is_cased

SENTENCES = {
    "en": [
        "The President's house was built in 1792.",
        "“Don’t panic,” she said… and left — quickly!",
        "Prices rose 4.5% to $1,200 in the U.S. on Monday.",
        "See https://example.org/path?q=1 for well-known e-mail tips.",
        "Ａｎ ｏｄｄ ｆｕｌｌｗｉｄｔｈ ｌｉｎｅ：１２３（ｏｋ）！",
        "Tabs\tand\u200bzero-width\u0007control characters.",
    ],
    "de": [
        "Die Katze des Präsidenten schläft über dem Ofen.",
        "„Ich weiß es nicht“, sagte er – und ging.",
        "Er kaufte 3,5 kg Äpfel für 12,50 € am 3. Oktober.",
        "Österreichs Straßenbahn fährt um 8:15 Uhr ab; Zürich ist groß.",
        "Das ist's: der President's Cup findet statt.",
    ],
}


def reference(vocab_json, merges, lowercase):
    return XLMTokenizer(
        vocab_file=str(vocab_json),
        merges_file=str(merges),
        do_lowercase_and_remove_accent=lowercase,
        lang2id={"de": 0, "en": 1},
        id2lang={0: "de", 1: "en"},
    )


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy-bpe")
    text = BILINGUAL_CORPUS + "\n" + " ".join(s for ss in SENTENCES.values() for s in ss)
    codes = learn_codes(text, 400)
    write_codes(folder / "merges.txt", codes)
    vocab = vocab_from_codes(codes, BILINGUAL_CORPUS.split())  # the test sentences keep some unknown pieces
    write_vocab_json(folder / "vocab.json", vocab)
    return folder / "vocab.json", folder / "merges.txt"


@pytest.fixture(scope="module")
def real_files(tmp_path_factory):
    folder = real_bpe_dir()
    if folder is None:
        pytest.skip("the real BPE files (../shared/xlm-ende-bpe) are not beside this checkout")
    vocab_json = real_vocab_json(folder, tmp_path_factory.mktemp("real-bpe") / "vocab.json")
    return vocab_json, folder / "codes_ende"


@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("lang", ["en", "de"])
def test_toy_files_match_reference(toy_files, lang, lowercase):
    ours = Tokenizer.from_files(*toy_files, lowercase=lowercase)
    theirs = reference(*toy_files, lowercase)
    for text in SENTENCES[lang]:
        pieces = theirs._tokenize(text, lang=lang)
        assert ours.tokenize(text, lang) == pieces, text
        assert ours.encode(text, lang) == theirs.convert_tokens_to_ids(pieces), text


@pytest.mark.real_vocab
@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("lang", ["en", "de"])
def test_real_files_match_reference(real_files, lang, lowercase):
    ours = Tokenizer.from_files(*real_files, lowercase=lowercase)
    theirs = reference(*real_files, lowercase)
    for text in SENTENCES["en"] + SENTENCES["de"]:
        pieces = theirs._tokenize(text, lang=lang)
        assert ours.tokenize(text, lang) == pieces, text
        assert ours.encode(text, lang) == theirs.convert_tokens_to_ids(pieces), text


@pytest.mark.real_vocab
def test_wikipedia_example(real_files):
    assert Tokenizer.from_files(*real_files, lowercase=False).encode("Wikipedia was used to", "en") == [
        32881,
        41,
        551,
        21,
    ]
    assert Tokenizer.from_files(*real_files, lowercase=True).encode("Wikipedia was used to", "en") == [
        4066,
        7763,
        52064,
        41,
        551,
        21,
    ]


@pytest.mark.real_vocab
def test_real_vocabulary_is_cased(real_files):
    import json

    assert vocab_is_cased(json.loads(real_files[0].read_text(encoding="utf-8")))


def test_lowercased_vocabulary_is_not_cased():
    codes = learn_codes(BILINGUAL_CORPUS.lower(), 200)
    assert not vocab_is_cased(vocab_from_codes(codes, BILINGUAL_CORPUS.lower().split()))
    assert vocab_is_cased(vocab_from_codes(learn_codes(BILINGUAL_CORPUS, 200), BILINGUAL_CORPUS.split()))


def test_language_rules_differ_as_the_reference_says(toy_files):
    ours = Tokenizer.from_files(*toy_files, lowercase=False)
    theirs = reference(*toy_files, False)
    text = "The President's house"
    assert ours.moses_tokens(text, "en") != ours.moses_tokens(text, "de")
    for lang in ("en", "de"):
        assert ours.tokenize(text, lang) == theirs._tokenize(text, lang=lang)


def pseudo_words(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzäöüßABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÜéè0123456789-'"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) for _ in range(count)]


@pytest.mark.real_vocab
def test_python_and_fastbpe_agree_on_real_codes(real_files):
    pytest.importorskip("fastBPE", reason="fastBPE is not built here")
    words = BILINGUAL_CORPUS.split() + pseudo_words(5000) + ["orneys", "corrid", "Wikipedia", "Ärger"]
    assert FastBPE(real_files[1]).apply(words) == PythonBPE(real_files[1]).apply(words)


def test_python_and_fastbpe_agree_on_test_codes(toy_files):
    pytest.importorskip("fastBPE", reason="fastBPE is not built here")
    words = BILINGUAL_CORPUS.split() + pseudo_words(2000, seed=1)
    assert FastBPE(toy_files[1]).apply(words) == PythonBPE(toy_files[1]).apply(words)


def test_unicode_punctuation_matches_reference():
    from transformers.models.xlm.tokenization_xlm import replace_unicode_punct as reference_replace

    text = "，。  、”“∶：？《》）！（；１」「０３２５６９７８４．  ～’…━〈〉【】％ plain"
    assert replace_unicode_punct(text) == reference_replace(text)


def test_empty_and_whitespace_give_no_ids(toy_files):
    ours = Tokenizer.from_files(*toy_files, lowercase=False)
    for text in ("", "   ", "\n\t", "\u200b\u200b"):
        assert ours.encode(text, "en") == []


def test_unknown_pieces_become_unk(toy_files):
    ours = Tokenizer.from_files(*toy_files, lowercase=False)
    assert 3 in ours.encode("漢字 🙂", "en")


def test_decode_gives_back_the_words(toy_files):
    ours = Tokenizer.from_files(*toy_files, lowercase=False)
    for lang, text in (("en", "The weather in Berlin is cold."), ("de", "Die Regierung hat gestern ein Gesetz.")):
        assert ours.decode([1, *ours.encode(text, lang)], lang) == text
    assert ours.decode([1, *ours.encode("Es war einmal.", "de"), 1, *ours.encode("Once upon a time", "en")], "de") == (
        "Es war einmal. Once upon a time"
    )


def test_decode_shows_unknown_tokens(toy_files):
    ours = Tokenizer.from_files(*toy_files, lowercase=False)
    assert ours.decode(ours.encode("Das 漢 Wetter", "de"), "de") == "Das <unk> Wetter"


def test_display_shows_word_boundaries(toy_files):
    ours = Tokenizer.from_files(*toy_files, lowercase=False)
    final = next(i for i, p in enumerate(ours.pieces) if p.endswith("</w>") and len(p) > 5)
    inner = next(i for i, p in enumerate(ours.pieces) if i >= 14 and not p.endswith("</w>") and len(p) > 1)
    assert ours.display(final) == ours.piece(final)[:-4]
    assert ours.display(inner) == ours.piece(inner) + "@@"
    assert ours.display(1) == "</s>"
