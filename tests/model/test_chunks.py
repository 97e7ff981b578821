"""A text tokenized piece by piece, each piece's ids cached, against transformers' XLMTokenizer on the whole text."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.model import test_tokenizer
from tests.model.test_tokenizer import LANGS, SENTENCES
from tests.reference import reference_ids
from xlm_demo.model import chunks

# Words and what comes between them: letters beside spaces (where pieces are cut) and every rule's neighbours
# (dots, apostrophes, quotes, colons, percent, brackets, digits, non-breaking spaces) beside them.
WORDS = st.sampled_from(["Mr.", "U.S.", "Katze", "über", "ÉLAN", "it's", "'s", "3", "4.5", "%", ")", "(", ":",
                         ";", "…", '"', "„", "«", "»", "Wahl", "naïve", "x", "Dr.", "Nr.", "...", "’", "—", "-",
                         "1792."])  # fmt: skip
GAPS = st.sampled_from([" ", "  ", " \u00a0", "\u00a0", "\t", " \n ", ""])
TEXTS = st.lists(st.tuples(WORDS, GAPS), min_size=1, max_size=30).map(lambda parts: "".join(w + g for w, g in parts))


@pytest.fixture(scope="module")
def cut_everywhere():
    """Every run of spaces between two letters cut, not only some: every place the cutting relies on is tried."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunks, "CUTS", chunks.cuts(1))
        yield


# The tokenizer tests' BPE files and tokenizer pairs (ours and transformers', cased and lowercasing).
toy_files, toy, real_files, real = (
    test_tokenizer.toy_files,
    test_tokenizer.toy,
    test_tokenizer.real_files,
    test_tokenizer.real,
)


def test_pieces_are_cut_before_words_of_a_multiple_of_the_length():
    assert chunks.cuts(4).split("Die Katze wird alt und isst Mäuse") == ["Die Katze", "wird alt und", "isst Mäuse"]


def test_pieces_are_cut_between_letters_only(cut_everywhere):
    assert chunks.pieces("Mr. Smith and 3 % of U.S. cats") == ["Mr. Smith", "and 3 % of", "U.S. cats"]
    assert chunks.pieces("Katze  über\u00a0Ofen\nim Haus") == ["Katze", "über\u00a0Ofen\nim", "Haus"]


@pytest.mark.parametrize("lowercase", [False, True])
@settings(max_examples=150, deadline=None)
@given(text=TEXTS, lang=st.sampled_from(LANGS))
def test_text_cut_into_pieces_gives_the_references_ids(toy, cut_everywhere, lowercase, text, lang):
    ours, theirs = toy[lowercase]
    assert ours.encode(text, lang) == reference_ids(theirs, text, lang), (text, lang)


@pytest.mark.parametrize("lang", LANGS)
def test_typing_a_text_character_by_character_gives_the_references_ids(toy, cut_everywhere, lang):
    """Each keystroke's text as the page sends it: the pieces before the edit come from the cache."""
    ours, theirs = toy[False]
    text = " ".join(SENTENCES)
    for end in range(1, len(text) + 1, 3):
        assert ours.encode(text[:end], lang) == reference_ids(theirs, text[:end], lang), text[:end]
    assert ours.piece_ids.cache_info().hits > 0


def test_an_edit_in_the_middle_gives_the_references_ids(toy, cut_everywhere):
    ours, theirs = toy[False]
    text = " ".join(SENTENCES[:6])
    for old, new in (("house", "garden"), ("Don", "Do not"), ("4.5", "4. 5"), ("built", "built.")):
        edited = text.replace(old, new, 1)
        assert ours.encode(edited, "en") == reference_ids(theirs, edited, "en"), edited


@pytest.mark.real_vocab
@pytest.mark.parametrize("lang", LANGS)
def test_real_files_piece_by_piece_give_the_references_ids(real, cut_everywhere, lang):
    ours, theirs = real[False]
    text = " ".join(SENTENCES)
    for end in range(1, len(text) + 1, 5):
        assert ours.encode(text[:end], lang) == reference_ids(theirs, text[:end], lang), text[:end]
