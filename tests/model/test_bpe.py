"""Both BPE backends against transformers' XLMTokenizer.bpe, and fastBPE's edge cases, on test-made and real codes."""

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import XLMTokenizer

from tests.bpe_files import (
    BILINGUAL_CORPUS,
    SPECIALS,
    learn_codes,
    moses_words,
    pseudo_words,
    real_bpe_dir,
    write_codes,
    write_vocab_json,
)
from xlm_demo.model import bpe as bpe_module
from xlm_demo.model.bpe import FastBPE, PythonBPE, fastbpe_importable, hf_pieces, load_bpe

needs_fastbpe = pytest.mark.skipif(not fastbpe_importable(), reason="fastBPE is not built in this environment")
# Words as Moses makes them: any characters but whitespace (Z*, and the C0/C1 controls that str.split() splits at).
MOSES_WORD = st.text(st.characters(exclude_categories=["Zs", "Zl", "Zp", "Cc", "Cs"]), min_size=1, max_size=24)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=24)  # surrogates, NUL, spaces and all


def reference(folder, merges_txt) -> XLMTokenizer:
    """transformers' tokenizer over `merges_txt`, for its bpe(word); the vocabulary plays no part in BPE."""
    write_vocab_json(folder / "vocab.json", {token: i for i, token in enumerate(SPECIALS)})
    return XLMTokenizer(vocab_file=str(folder / "vocab.json"), merges_file=str(merges_txt), lang2id={"de": 0, "en": 1})


def reference_pieces(tokenizer: XLMTokenizer, words: list[str]) -> list[str]:
    """transformers' pieces of each word (bpe() joins them with spaces)."""
    return [piece for word in words for piece in tokenizer.bpe(word).split(" ")]


class Backends:
    """One codes file read by transformers, the pure-Python BPE and, where built, fastBPE."""

    def __init__(self, codes, folder):
        self.codes = codes
        self.reference = reference(folder, codes)
        self.python = PythonBPE(codes)
        self.fast = FastBPE(codes) if fastbpe_importable() else None


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy-bpe")
    write_codes(folder / "merges.txt", learn_codes(BILINGUAL_CORPUS, 400))
    return Backends(folder / "merges.txt", folder)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    if real_bpe_dir() is None:
        pytest.skip("the real BPE files (../shared/xlm-ende-bpe) are not beside this checkout")
    return Backends(real_bpe_dir() / "codes_ende", tmp_path_factory.mktemp("real-bpe"))


def test_python_bpe_matches_transformers_on_test_codes(toy):
    words = moses_words(BILINGUAL_CORPUS) + pseudo_words(2000, seed=1)
    assert toy.python.apply(words) == reference_pieces(toy.reference, words)


@pytest.mark.real_vocab
def test_python_bpe_matches_transformers_on_real_codes(real):
    words = moses_words(BILINGUAL_CORPUS) + pseudo_words(3000) + ["orneys", "corrid", "Wikipedia", "Ärger", "ß"]
    assert real.python.apply(words) == reference_pieces(real.reference, words)


@pytest.mark.real_vocab
@settings(max_examples=200, deadline=None, database=None)
@given(words=st.lists(MOSES_WORD, max_size=4))
def test_python_bpe_matches_transformers_on_any_word(real, words):
    assert real.python.apply(words) == reference_pieces(real.reference, words)


@needs_fastbpe
def test_fastbpe_matches_python_on_test_codes(toy):
    words = moses_words(BILINGUAL_CORPUS) + pseudo_words(2000, seed=2)
    assert toy.fast.apply(words) == toy.python.apply(words)


@needs_fastbpe
@pytest.mark.real_vocab
def test_fastbpe_matches_python_on_real_codes(real):
    words = moses_words(BILINGUAL_CORPUS) + pseudo_words(4000, seed=3) + [w.upper() for w in pseudo_words(500)]
    assert real.fast.apply(words) == real.python.apply(words)


@needs_fastbpe
@pytest.mark.real_vocab
@settings(max_examples=300, deadline=None, database=None)
@given(words=st.lists(ANY_TEXT, max_size=5))
def test_fastbpe_matches_python_on_any_text(real, words):
    assert real.fast.apply(words) == real.python.apply(words)


@needs_fastbpe
@pytest.mark.real_vocab
def test_no_vocabulary_so_no_unmerging(real):
    """With vocab_ende fastBPE would give "or@@ neys"; without it, like transformers, the unit stays whole."""
    assert real.fast.apply(["orneys"]) == real.python.apply(["orneys"]) == ["orneys</w>"]


@pytest.mark.parametrize("backend", ["python", "fastBPE"])
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([], []),
        (["", " ", "  \t\n", "\u3000"], []),
        (["a\x00b"], ["a", "\x00", "b</w>"]),  # fastBPE alone would end the word at NUL
        (["x\ud800y"], ["x", "\ud800", "y</w>"]),  # a lone surrogate cannot cross into C++
        (["🙂", "e\u0301", "漢字"], ["🙂</w>", "e", "\u0301</w>", "漢", "字</w>"]),
    ],
)
def test_edge_cases(tmp_path, backend, words, expected):
    if backend == "fastBPE" and not fastbpe_importable():
        pytest.skip("fastBPE is not built in this environment")
    write_codes(tmp_path / "codes", [("q", "z</w>", 1)])  # merges none of these words
    assert load_bpe(tmp_path / "codes", backend).apply(words) == expected


def test_whitespace_inside_a_word_separates_words(toy):
    for bpe in filter(None, (toy.python, toy.fast)):
        assert bpe.apply(["Katze des", "Präsidenten\tschläft"]) == bpe.apply(["Katze", "des", "Präsidenten", "schläft"])


@needs_fastbpe
def test_very_long_words(toy):
    words = ["".join(pseudo_words(300, seed=4)), "ä" * 5000]
    assert toy.fast.apply(words) == toy.python.apply(words)


@pytest.mark.parametrize("backend", ["python", "fastBPE"])
def test_codes_file_with_header_blank_lines_and_crlf(tmp_path, toy, backend):
    if backend == "fastBPE" and not fastbpe_importable():
        pytest.skip("fastBPE is not built in this environment")
    lines = toy.codes.read_text(encoding="utf-8").splitlines()
    (tmp_path / "merges.txt").write_text("#version: 0.2\r\n" + "\r\n".join(lines) + "\r\n\r\n\n", encoding="utf-8")
    words = moses_words(BILINGUAL_CORPUS)  # fastBPE reading this file itself would segfault on the blank lines
    assert load_bpe(tmp_path / "merges.txt", backend).apply(words) == reference_pieces(toy.reference, words)


@pytest.mark.parametrize("backend", ["python", "fastBPE"])
def test_a_repeated_merge_keeps_its_last_rank_as_in_transformers(tmp_path, backend):
    if backend == "fastBPE" and not fastbpe_importable():
        pytest.skip("fastBPE is not built in this environment")
    write_codes(tmp_path / "merges.txt", [("a", "b", 3), ("b", "c</w>", 2), ("a", "b", 1)])
    theirs = reference(tmp_path, tmp_path / "merges.txt")
    assert (
        load_bpe(tmp_path / "merges.txt", backend).apply(["abc"])
        == reference_pieces(theirs, ["abc"])
        == ["a", "bc</w>"]
    )


def test_a_last_merge_without_newline_is_kept(tmp_path):
    """transformers drops a merges.txt's last line even when it is a merge; fastBPE, and we, keep it."""
    (tmp_path / "merges.txt").write_text("a b 3\nab c</w> 2", encoding="utf-8")
    assert PythonBPE(tmp_path / "merges.txt").apply(["abc"]) == ["abc</w>"]
    assert reference_pieces(reference(tmp_path, tmp_path / "merges.txt"), ["abc"]) == ["ab", "c</w>"]


@pytest.mark.parametrize("backend", ["python", "fastBPE"])
def test_a_missing_codes_file_raises_instead_of_exiting(tmp_path, backend):
    if backend == "fastBPE" and not fastbpe_importable():
        pytest.skip("fastBPE is not built in this environment")
    with pytest.raises(FileNotFoundError):
        load_bpe(tmp_path / "missing", backend)


def test_fastbpe_output_in_transformers_form():
    assert hf_pieces("wi@@ ki@@ pedia") == ["wi", "ki", "pedia</w>"]
    assert hf_pieces("a") == ["a</w>"]
    assert hf_pieces("a@@ @@@ @@") == ["a", "@", "@@</w>"]  # "@@" in the text itself


def test_load_bpe_picks_and_logs_a_backend(toy, caplog):
    with caplog.at_level(logging.INFO, logger="xlm_demo"):
        bpe = load_bpe(toy.codes)
    assert isinstance(bpe, FastBPE if fastbpe_importable() else PythonBPE)
    assert [record.getMessage().split(" ")[1] for record in caplog.records] == [bpe.name]
    assert isinstance(load_bpe(toy.codes, "python"), PythonBPE)
    with pytest.raises(ValueError, match="BPE backend"):
        load_bpe(toy.codes, "sentencepiece")


@needs_fastbpe
def test_fastbpe_gives_the_words_it_has_seen_the_same_pieces(toy, monkeypatch):
    words = moses_words(BILINGUAL_CORPUS)
    first = toy.fast.apply(words)
    mixed = [*reversed(words), *pseudo_words(50, seed=7), *words]  # seen words, in another order, among new ones
    assert toy.fast.apply(mixed) == reference_pieces(toy.reference, mixed)
    monkeypatch.setattr(bpe_module, "SEEN_WORDS", 3)  # past its bound, it starts again
    assert toy.fast.apply(words) == first and len(toy.fast.seen) == 0
