"""The tokenizer against transformers' XLMTokenizer._tokenize(text, lang=...), on test-made and real BPE files."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import XLMTokenizer
from transformers.models.xlm import tokenization_xlm

from tests.bpe_files import (
    BILINGUAL_CORPUS,
    SPECIALS,
    learn_codes,
    moses_words,
    real_bpe_dir,
    real_vocab_json,
    vocab_from_codes,
    write_codes,
    write_vocab_json,
)
from tests.reference import reference_ids
from xlm_demo.model.bpe import fastbpe_importable
from xlm_demo.model.tokenizer import Tokenizer, lowercase_and_strip_accents, replace_unicode_punct, vocab_is_cased

SENTENCES = [
    "The President's house was built in 1792.",
    "“Don’t panic,” she said… and left — quickly!",
    "Prices rose 4.5% to $1,200 in the U.S. on Monday, didn't they?",
    "See https://example.org/path?q=1&x=2 for well-known e-mail tips.",
    "Ａｎ ｏｄｄ ｆｕｌｌｗｉｄｔｈ ｌｉｎｅ：１２３（ｏｋ）！ 「引用」。 【注】 ５０％",
    "Tabs\tand\u200bzero-width\u0007control\u00a0characters.",
    "Die Katze des Präsidenten schläft über dem Ofen.",
    "„Ich weiß es nicht“, sagte er – und ging.",
    "Er kaufte 3,5 kg Äpfel für 12,50 € am 3. Oktober.",
    "Österreichs Straßenbahn fährt um 8:15 Uhr ab; Zürich ist groß.",
    "Das ist's: der President's Cup findet statt.",
    "ÉLAN, naïve café, façade — «Zitat» ‚einfach‘ 'single' \"double\" ``tex''",
    "x-ray 3-1 well--known ... !? (a) [b] {c} <d> @user #tag a/b",
]
LANGS = ["en", "de"]
# Text of every kind, lone surrogates and controls included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
# Text near what users type: letters of both languages, typographic and full-width punctuation, spaces, digits.
TYPED_TEXT = st.text(
    st.sampled_from(list("aAbBeEnNsStTzZäÄöÖüÜßéç0123 .,;:!?'\"-–—…“”„‘’«»()%$€/&@＃，。！（）１\t\u200b")), max_size=40
)


def reference(vocab_json, merges_txt, lowercase) -> XLMTokenizer:
    return XLMTokenizer(
        vocab_file=str(vocab_json),
        merges_file=str(merges_txt),
        do_lowercase_and_remove_accent=lowercase,
        lang2id={"de": 0, "en": 1},
        id2lang={0: "de", 1: "en"},
    )


def assert_matches(ours: Tokenizer, theirs: XLMTokenizer, text: str, lang: str) -> None:
    """Pieces and literal ids equal to transformers' _tokenize(text, lang=...) (tokenize() would drop lang);
    ids with specials read equal to its tokenize() with `lang` bound (the same where no special is written)."""
    pieces = theirs._tokenize(text, lang=lang)
    assert ours.tokenize(text, lang) == pieces, (text, lang)
    assert ours.encode(text, lang, literal=True) == theirs.convert_tokens_to_ids(pieces), (text, lang)
    assert ours.encode(text, lang) == reference_ids(theirs, text, lang), (text, lang)


def pairs(vocab_json, merges_txt, backend="auto") -> dict[bool, tuple[Tokenizer, XLMTokenizer]]:
    """Ours and transformers', cased (lowercase=False) and lowercasing, over the same files."""
    return {
        lowercase: (
            Tokenizer.from_files(vocab_json, merges_txt, lowercase, backend),
            reference(vocab_json, merges_txt, lowercase),
        )
        for lowercase in (False, True)
    }


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy-bpe")
    codes = learn_codes(BILINGUAL_CORPUS + "\n" + "\n".join(SENTENCES), 500)
    write_codes(folder / "merges.txt", codes)
    write_vocab_json(folder / "vocab.json", vocab_from_codes(codes, moses_words(BILINGUAL_CORPUS)))
    return folder / "vocab.json", folder / "merges.txt"  # the test sentences keep some pieces out of the vocab


@pytest.fixture(scope="module")
def toy(toy_files):
    return pairs(*toy_files)


@pytest.fixture(scope="module")
def real_files(tmp_path_factory):
    if real_bpe_dir() is None:
        pytest.skip("the real BPE files (../shared/xlm-ende-bpe) are not beside this checkout")
    return real_vocab_json(tmp_path_factory.mktemp("real-bpe")), real_bpe_dir() / "codes_ende"


@pytest.fixture(scope="module")
def real(real_files):
    return pairs(*real_files)


@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("lang", LANGS)
def test_test_made_files_match_reference(toy, lang, lowercase):
    for text in SENTENCES + BILINGUAL_CORPUS.splitlines():
        assert_matches(*toy[lowercase], text, lang)


@pytest.mark.parametrize("lowercase", [False, True])
@settings(max_examples=150, deadline=None, database=None)
@given(text=st.one_of(TYPED_TEXT, ANY_TEXT), lang=st.sampled_from(LANGS))
def test_test_made_files_match_reference_on_any_text(toy, lowercase, text, lang):
    assert_matches(*toy[lowercase], text, lang)


@pytest.mark.real_vocab
@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("lang", LANGS)
def test_real_files_match_reference(real, lang, lowercase):
    for text in SENTENCES + BILINGUAL_CORPUS.splitlines():
        assert_matches(*real[lowercase], text, lang)


@pytest.mark.real_vocab
@settings(max_examples=150, deadline=None, database=None)
@given(text=TYPED_TEXT, lang=st.sampled_from(LANGS), lowercase=st.booleans())
def test_real_files_match_reference_on_typed_text(real, text, lang, lowercase):
    assert_matches(*real[lowercase], text, lang)


@pytest.mark.real_vocab
def test_wikipedia_example(real):
    """Spec §5.3: cased, the real vocabulary has the whole word; lowercased, it splits in three."""
    assert real[False][0].encode("Wikipedia was used to", "en") == [32881, 41, 551, 21]
    assert real[True][0].encode("Wikipedia was used to", "en") == [4066, 7763, 52064, 41, 551, 21]


def test_english_and_german_rules_differ_as_in_the_reference(toy):
    ours, theirs = toy[False]
    text = "The President's house"
    assert ours.moses_tokens(text, "en") == ["The", "President", "'s", "house"]
    assert ours.moses_tokens(text, "de") == ["The", "President", "'", "s", "house"]
    assert theirs._tokenize(text, lang="en") != theirs._tokenize(text, lang="de")
    for lang in LANGS:
        assert_matches(ours, theirs, text, lang)


@pytest.mark.skipif(not fastbpe_importable(), reason="fastBPE is not built in this environment")
@pytest.mark.real_vocab
def test_backends_give_the_same_ids(real_files):
    python = Tokenizer.from_files(*real_files, lowercase=False, bpe_backend="python")
    fast = Tokenizer.from_files(*real_files, lowercase=False, bpe_backend="fastBPE")
    for lang in LANGS:
        for text in SENTENCES + BILINGUAL_CORPUS.splitlines():
            assert python.encode(text, lang) == fast.encode(text, lang)


@pytest.mark.real_vocab
def test_real_vocabulary_is_cased(real_files):
    assert vocab_is_cased(json.loads(real_files[0].read_text(encoding="utf-8")))


def test_lowercased_vocabulary_is_not_cased():
    lower = BILINGUAL_CORPUS.lower()
    assert not vocab_is_cased(vocab_from_codes(learn_codes(lower, 200), moses_words(lower)))
    assert vocab_is_cased(vocab_from_codes(learn_codes(BILINGUAL_CORPUS, 200), moses_words(BILINGUAL_CORPUS)))


@settings(max_examples=300, database=None)
@given(text=st.one_of(TYPED_TEXT, ANY_TEXT))
def test_unicode_punctuation_matches_reference(text):
    assert replace_unicode_punct(text) == tokenization_xlm.replace_unicode_punct(text)


def test_every_mapped_character_matches_reference():
    text = "，。  、”“∶：？《》）！（；１」「０３２５６９７８４．  ～’…━〈〉【】％ plain。\u3000x．"
    assert replace_unicode_punct(text) == tokenization_xlm.replace_unicode_punct(text)


@settings(max_examples=300, database=None)
@given(tokens=st.lists(st.text(st.characters(exclude_categories=["Zs", "Cs"]), min_size=1), max_size=4))
def test_lowercasing_matches_reference(tokens):
    assert lowercase_and_strip_accents(tokens) == tokenization_xlm.lowercase_and_remove_accent(tokens)


@pytest.mark.parametrize("text", ["", " ", "   ", "\n\t", "\u200b\u200b", "\u3000", "\x00\x07"])
def test_empty_and_whitespace_give_no_ids(toy, text):
    for lang in LANGS:
        assert toy[False][0].encode(text, lang) == []


@settings(max_examples=200, deadline=None, database=None)
@given(text=ANY_TEXT, lang=st.sampled_from(LANGS))
def test_any_string_encodes_to_known_ids(toy, text, lang):
    ours = toy[True][0]
    assert all(0 <= i < ours.vocab_size for i in ours.encode(text, lang))


def test_unknown_pieces_become_unk(toy):
    assert 3 in toy[False][0].encode("漢字 🙂", "en")


def test_an_unknown_language_is_a_value_error(toy):
    ours = toy[False][0]
    for call in (ours.encode, ours.tokenize, ours.moses_tokens):
        with pytest.raises(ValueError, match="'fr' is not supported"):
            call("Bonjour", "fr")
    with pytest.raises(ValueError, match="'fr' is not supported"):
        ours.decode([1, 20], "fr")


def test_languages_are_the_callers(toy_files):
    ours = Tokenizer.from_files(*toy_files, lowercase=False, langs=("fr",))
    assert ours.moses_tokens("L'homme", "fr") == ["L'", "homme"]
    with pytest.raises(ValueError):
        ours.encode("the", "en")


@pytest.mark.parametrize(
    ("lang", "text", "decoded"),
    [
        ("en", "The weather in Berlin is cold, isn't it?", None),
        ("en", 'He paid $4.50 for a well-known (and "fresh") coffee.', None),
        ("de", "Die Regierung hat gestern ein Gesetz über Energie beschlossen.", None),
        ("de", "Er kaufte 3,5 Kilogramm Äpfel für den Kuchen; Zürich ist groß.", None),
        ("de", "„Ich weiß es nicht“, sagte der Lehrer.", '"Ich weiß es nicht", sagte der Lehrer.'),  # quotes normalised
    ],
)
def test_decode_gives_back_the_words(toy, lang, text, decoded):
    ours = toy[False][0]
    ids = ours.encode(text, lang)
    assert 3 not in ids
    assert ours.decode(ids, lang) == ours.decode([1, *ids], lang, literal=True) == (decoded or text)
    assert ours.decode([1, *ids], lang) == "</s> " + (decoded or text)


def test_decode_shows_eos_between_sentences(toy):
    ours = toy[False][0]
    ids = [1, *ours.encode("Es war einmal.", "de"), 1, *ours.encode("Once upon a time", "en"), 1]
    assert ours.decode(ids, "de") == "</s> Es war einmal. </s> Once upon a time </s>"
    assert ours.decode(ids, "de", literal=True) == "Es war einmal. Once upon a time"


def test_decode_shows_specials_unless_literal(toy):
    ours = toy[False][0]
    ids = [0, *ours.encode("Das 漢 Wetter", "de"), 2, 5]
    assert ours.decode(ids, "de") == "<s> Das <unk> Wetter <pad> <special1>"
    assert ours.decode(ids, "de", literal=True) == "Das <unk> Wetter"


def test_decode_ends_an_unfinished_word(toy):
    ours = toy[False][0]
    inner = next(i for i, piece in enumerate(ours.pieces) if i >= 14 and not piece.endswith("</w>") and len(piece) > 1)
    assert ours.decode([inner], "en") == ours.decode([1, inner], "en", literal=True) == ours.piece(inner)


def test_display_shows_word_boundaries(toy):
    ours = toy[False][0]
    final = next(i for i, piece in enumerate(ours.pieces) if piece.endswith("</w>") and len(piece) > 5)
    inner = next(i for i, piece in enumerate(ours.pieces) if i >= 14 and not piece.endswith("</w>") and len(piece) > 1)
    assert ours.display(final) == ours.piece(final).removesuffix("</w>")
    assert ours.display(inner) == ours.piece(inner) + "@@"
    assert [ours.display(i) for i in (0, 1, 3, 5)] == ["<s>", "</s>", "<unk>", "<special1>"]


@pytest.mark.real_vocab
def test_display_of_real_pieces(real):
    ours = real[True][0]
    assert [ours.display(i) for i in ours.encode("Wikipedia was", "en")] == ["wi@@", "ki@@", "pedia", "was"]
    assert ours.vocab_size == 64_699


BUNDLED = Path(__file__).resolve().parents[2] / "assets" / "xlm-mini-ende"
# Specials at the start, in the middle, at the end, against punctuation and each other, and near misses that are not.
WITH_SPECIALS = [
    "</s> The President's house was built in 1792.",
    "The house is old. </s> Das Haus ist alt.",
    "Die Katze schläft über dem Ofen </s>",
    "Hallo.</s>Welt!<special1>, sagte er: (<unk>) „<s>“",
    "</s></s><special1><s><pad><unk><special0><special9>",
    "Wikipedia was <special1> to train </s>",
    "Das ist's:<special1>der President's Cup</s>findet statt.",
    "x<special2>y z<pad>",
    " <s> ",
    "<special10> <S> </ s> <special> <special1 > < /s> </S>",  # none of these is a special
    "„Ich weiß es nicht“</s>sagte er – und ging.<special1>",
]
WITH_SPECIALS_TEXT = st.lists(st.one_of(TYPED_TEXT, st.sampled_from(SPECIALS)), max_size=6).map("".join)


def assert_specials_match(ours: Tokenizer, theirs: XLMTokenizer, text: str, lang: str) -> None:
    """Specials read as transformers reads them; literal, the text's ids as before (_tokenize of all of it)."""
    assert ours.encode(text, lang) == reference_ids(theirs, text, lang), (text, lang)
    literal = theirs.convert_tokens_to_ids(theirs._tokenize(text, lang=lang))
    assert ours.encode(text, lang, literal=True) == literal, (text, lang)


@pytest.fixture(scope="module")
def bundled():
    files = BUNDLED / "vocab.json", BUNDLED / "merges.txt"
    return Tokenizer.from_files(*files, lowercase=False), reference(*files, lowercase=False)


def test_the_reference_binds_the_language(toy):
    """The reference itself: with `lang` bound, German rules apply between the specials (unbound, they would not)."""
    theirs = toy[False][1]
    text = "The President's </s> house"
    assert reference_ids(theirs, text, "de") != reference_ids(theirs, text, "en")
    assert reference_ids(theirs, text, "en") == theirs.convert_tokens_to_ids(theirs.tokenize(text))


@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("lang", LANGS)
def test_specials_in_text_match_reference(toy, lang, lowercase):
    for text in WITH_SPECIALS:
        assert_specials_match(*toy[lowercase], text, lang)


@pytest.mark.parametrize("lang", LANGS)
def test_specials_in_text_match_reference_on_the_bundled_files(bundled, lang):
    for text in WITH_SPECIALS:
        assert_specials_match(*bundled, text, lang)
    ours = bundled[0]
    assert ours.encode("a <special1> b", lang) == [ours.vocab["a</w>"], 5, ours.vocab["b</w>"]]
    assert 5 not in ours.encode("a <special1> b", lang, literal=True)


@pytest.mark.real_vocab
@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("lang", LANGS)
def test_specials_in_text_match_reference_on_the_real_files(real, lang, lowercase):
    for text in WITH_SPECIALS:
        assert_specials_match(*real[lowercase], text, lang)


@pytest.mark.parametrize("lowercase", [False, True])
@settings(max_examples=150, deadline=None, database=None)
@given(text=WITH_SPECIALS_TEXT, lang=st.sampled_from(LANGS))
def test_specials_anywhere_match_reference(toy, lowercase, text, lang):
    assert_specials_match(*toy[lowercase], text, lang)


def test_literal_is_transformers_split_special_tokens(toy):
    """transformers' own literal mode (split_special_tokens=True, English rules in tokenize()) gives the same ids."""
    ours, theirs = toy[False]
    for text in WITH_SPECIALS:
        pieces = theirs.tokenize(text, split_special_tokens=True)
        assert ours.encode(text, "en", literal=True) == theirs.convert_tokens_to_ids(pieces), text


@settings(max_examples=150, deadline=None, database=None)
@given(text=WITH_SPECIALS_TEXT, lang=st.sampled_from(LANGS))
def test_decoded_specials_encode_back_to_themselves(toy, text, lang):
    """Whatever the words do through Moses and back, the specials come back, in order (<unk> aside: text makes it)."""
    ours = toy[False][0]
    ids = ours.encode(text, lang)
    back = ours.encode(ours.decode(ids, lang), lang)
    assert [i for i in back if i < 14 and i != 3] == [i for i in ids if i < 14 and i != 3]


@pytest.mark.parametrize("lang", LANGS)
def test_text_with_specials_decodes_and_encodes_back_to_the_same_ids(toy, lang):
    ours = toy[False][0]
    for text in ["</s> Es war einmal. </s> Once upon a time <special1> there was a king. </s>", "<s> a <pad> b"]:
        ids = ours.encode(text, lang)
        assert ours.encode(ours.decode(ids, lang), lang) == ids
