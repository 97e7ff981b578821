"""The model that ships in assets/xlm-mini-ende: it loads as the demo loads it and knows its two languages."""

import math
from pathlib import Path

import pytest
import torch

from scripts.bundled_model import export, streams, train
from xlm_demo.model.bpe import load_bpe
from xlm_demo.model.checkpoint import load_checkpoint
from xlm_demo.model.tokenizer import Tokenizer
from xlm_demo.model.weights import build_model
from xlm_demo.model.xlm import XLMConfig

BUNDLED = Path(__file__).resolve().parents[2] / "assets" / "xlm-mini-ende"
EOS = 1  # XLM starts streams with </s> and ends every sentence with it

# Written for this test, in neither language's training text.
GERMAN = (
    "Ich habe heute Morgen einen langen Spaziergang durch den Park gemacht.",
    "Wenn Sie die Datei speichern möchten, klicken Sie auf die Schaltfläche oben links.",
    "Die Kinder spielen im Garten, während die Eltern in der Küche das Essen vorbereiten.",
    "Das Programm zeigt eine Liste aller Dokumente an, die Sie zuletzt geöffnet haben.",
    "Niemand weiß genau, warum der Zug heute schon wieder Verspätung hat.",
)
ENGLISH = (
    "I went for a long walk through the park this morning.",
    "If you want to save the file, click the button in the upper left corner.",
    "The children are playing in the garden while their parents prepare dinner in the kitchen.",
    "The program shows a list of all the documents that you have opened recently.",
    "Nobody knows exactly why the train is late again today.",
)

# Prompt -> the language whose Moses rules tokenize it; each is continued under both language ids.
PROMPTS = {
    "Das Wetter ist heute": "de",
    "Um ein Dokument zu öffnen,": "de",
    "The weather today is": "en",
    "Linux": "en",
}
# Greedy ids after `</s> prompt`; a change here means the shipped model or the tokenizer changed behaviour.
# After rebuilding the model, `python -m tests.model.test_bundled` prints the new table.
PINNED = {
    ("Das Wetter ist heute", "de"): [15, 22, 22, 22, 22, 22, 750, 14, 26, 232],  # , der der der der der Welt. -- Goethe
    ("Das Wetter ist heute", "en"): [15, 167, 14, 1, 40, 342, 23, 16, 342, 23],  # , n. The first of the first of
    ("Um ein Dokument zu öffnen,", "de"): [
        253,
        25,
        35,
        572,
        572,
        15,
        253,
        25,
        35,
        572,
    ],  # wählen Sie das Symbol Symbol, wählen Sie das Symbol
    ("Um ein Dokument zu öffnen,", "en"): [
        36,
        55,
        228,
        173,
        16,
        150,
        15,
        36,
        55,
        173,
    ],  # you can also use the document, you can use
    ("The weather today is", "de"): [30, 17, 111, 731, 17, 1, 17, 154, 32, 38],  # : "Der Mensch" "Das ist ein
    ("The weather today is", "en"): [21, 735, 14, 1, 40, 342, 342, 23, 16, 429],  # a good. The first first of the same
    ("Linux", "de"): [32, 38, 1249, 15, 35, 832, 37, 420, 14, 1],  # ist ein Programm, das Paket zu verwenden.
    ("Linux", "en"): [1046, 28, 21, 301, 14, 1, 214, 224, 28, 21],  # kernel is a package. Debian system is a
}

needs_bundled = pytest.mark.skipif(
    not (BUNDLED / "config.json").is_file(), reason="assets/xlm-mini-ende is not built yet (make bundled-model)"
)


def load_bundled():
    """The bundled model and its tokenizer, loaded as the demo loads any checkpoint folder."""
    checkpoint = load_checkpoint(str(BUNDLED))
    model = build_model(checkpoint.config, checkpoint.state_dict)
    tokenizer = Tokenizer(checkpoint.vocab, load_bpe(checkpoint.merges_path), lowercase=checkpoint.config_lowercases)
    return checkpoint, model, tokenizer


@pytest.fixture(scope="module")
def bundled():
    return load_bundled()


def mean_nll(model, ids: list[int], lang_id: int) -> float:
    """Mean next-token NLL of `</s> ids </s>` under one language id."""
    tokens = torch.tensor([[EOS, *ids, EOS]])  # (1, T + 1)
    with torch.no_grad():
        logits = model.logits(model(tokens[:, :-1], torch.tensor([[lang_id]])))  # (1, T, V)
    return torch.nn.functional.cross_entropy(logits[0], tokens[0, 1:]).item()


def greedy(model, ids: list[int], lang_id: int, n_tokens: int) -> list[int]:
    """n_tokens greedy next tokens after `</s> ids`, with a KV cache."""
    cache = model.new_cache(1, len(ids) + 1 + n_tokens)
    langs = torch.tensor([[lang_id]])
    out = []
    with torch.no_grad():
        hidden = model(torch.tensor([[EOS, *ids]]), langs, cache)
        for _ in range(n_tokens):
            out.append(int(model.logits(hidden[0, -1]).argmax()))
            hidden = model(torch.tensor([[out[-1]]]), langs, cache)
    return out


@needs_bundled
def test_ships_in_the_hub_layout_within_its_size_budget(bundled):
    checkpoint, model, tokenizer = bundled
    assert checkpoint.lang2id == {"de": 0, "en": 1}
    assert checkpoint.config.max_positions == 512
    assert checkpoint.config_lowercases is False
    assert model.proj.weight is model.tokens.weight  # stored once, tied on load
    assert model.config.vocab_size == tokenizer.vocab_size == len(checkpoint.vocab)
    assert sum(path.stat().st_size for path in BUNDLED.iterdir()) < 20e6
    assert (BUNDLED / "README.md").is_file()


@needs_bundled
@pytest.mark.parametrize(("text_lang", "sentences"), [("de", GERMAN), ("en", ENGLISH)])
def test_each_language_scores_better_under_its_own_id(bundled, text_lang, sentences):
    checkpoint, model, tokenizer = bundled
    other = "en" if text_lang == "de" else "de"
    for sentence in sentences:
        ids = tokenizer.encode(sentence, text_lang)
        own = mean_nll(model, ids, checkpoint.lang2id[text_lang])
        wrong = mean_nll(model, ids, checkpoint.lang2id[other])
        assert own < wrong, f"{sentence!r}: {own:.3f} nats under {text_lang}, {wrong:.3f} under {other}"


@needs_bundled
@pytest.mark.parametrize(("text_lang", "sentences"), [("de", GERMAN), ("en", ENGLISH)])
def test_held_out_perplexity_is_far_below_chance(bundled, text_lang, sentences):
    checkpoint, model, tokenizer = bundled
    nlls = [mean_nll(model, tokenizer.encode(s, text_lang), checkpoint.lang2id[text_lang]) for s in sentences]
    perplexity = math.exp(sum(nlls) / len(nlls))
    assert perplexity < model.config.vocab_size / 20, perplexity


@needs_bundled
@pytest.mark.parametrize(("prompt", "lang"), list(PINNED))
def test_greedy_continuations_are_pinned(bundled, prompt, lang):
    checkpoint, model, tokenizer = bundled
    ids = tokenizer.encode(prompt, PROMPTS[prompt])
    got = greedy(model, ids, checkpoint.lang2id[lang], len(PINNED[prompt, lang]))
    assert got == PINNED[prompt, lang], tokenizer.decode(got, lang)


@needs_bundled
def test_transformers_reads_the_folder_and_agrees(bundled):
    from transformers import XLMWithLMHeadModel

    _, model, tokenizer = bundled
    reference = XLMWithLMHeadModel.from_pretrained(BUNDLED, dtype=torch.float32).eval()
    ids = torch.tensor([[EOS, *tokenizer.encode(ENGLISH[0], "en")]])
    with torch.no_grad():
        expected = reference(input_ids=ids, langs=torch.full_like(ids, 1)).logits
        got = model.logits(model(ids, torch.tensor([[1]])))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


# Prompts with typed specials; their greedy continuations on the bundled model end sentences with </s>.
ROUND_TRIP = [
    ("Das Wetter ist heute", "en"),
    ("Linux </s> Das", "de"),
    ("Ich habe Hunger. </s> I am hungry. </s>", "en"),
    ("a <special1> b", "en"),
    ("Um ein Dokument zu öffnen,", "de"),
]


@needs_bundled
@pytest.mark.parametrize(("prompt", "lang"), ROUND_TRIP)
def test_a_continuation_typed_back_gives_the_same_ids(bundled_engine, prompt, lang):
    """What the CLI, the API and the export write as the continued text encodes back to what the model was fed."""
    encoded = bundled_engine.encode(prompt, lang, reserve=40)
    ids = encoded.input_ids + [step.id for step in bundled_engine.generate(encoded, 40)]
    text = bundled_engine.decode(ids, lang)
    assert EOS in ids[len(encoded.input_ids) :] and "</s>" in text.removeprefix(prompt)
    assert bundled_engine.encode(text, lang).input_ids == ids, text


@needs_bundled
def test_literal_text_loses_the_specials_on_the_way_back(bundled_engine):
    """The literal setting cannot name a special: decoded, </s> is a space, and the ids differ."""
    encoded = bundled_engine.encode("Das Wetter ist heute", "en", reserve=10)
    ids = encoded.input_ids + [step.id for step in bundled_engine.generate(encoded, 10)]
    text = bundled_engine.decode(ids, "en", literal=True)
    assert EOS in ids[1:] and "</s>" not in text
    assert bundled_engine.encode(text, "en", literal=True).input_ids == [EOS, *(i for i in ids[1:] if i != EOS)]


def test_export_round_trips_through_the_demo_loader(tmp_path):
    config = XLMConfig(vocab_size=40, dim=32, n_layers=2, n_heads=4, max_positions=16)
    model = train.new_model(config, seed=0).eval()
    word2id = {word: i for i, word in enumerate([*streams.SPECIALS, *(f"w{i}@@" for i in range(13)), *"abcdefghijklm"])}
    codes = tmp_path / "codes"
    codes.write_text("w 0 5\n")
    export.export(model, word2id, codes, {"de": 0, "en": 1}, tmp_path / "out")
    checkpoint = load_checkpoint(str(tmp_path / "out"))
    loaded = build_model(checkpoint.config, checkpoint.state_dict)
    assert checkpoint.vocab["w0"] == 14 and checkpoint.vocab["a</w>"] == 27
    with torch.no_grad():
        model.half().float()  # what float16 storage keeps
        ids, langs = torch.tensor([[1, 20, 30, 5]]), torch.tensor([[1]])
        torch.testing.assert_close(loaded.logits(loaded(ids, langs)), model.logits(model(ids, langs)))


def test_streams_start_with_eos_and_windows_overlap_by_one(tmp_path):
    bpe = tmp_path / "train.en"
    bpe.write_text("a@@ b c\nc a\n")
    word2id = {word: i for i, word in enumerate([*streams.SPECIALS, "a@@", "b", "c"])}
    tokens = streams.stream(bpe, word2id)
    assert tokens.tolist() == [1, 14, 15, 16, 1, 16, 3, 1]  # "a" alone was never a unit: <unk>
    windows = streams.windows(tokens, bptt=3)
    assert windows.tolist() == [[1, 14, 15, 16], [16, 1, 16, 3]]


def print_pins(n_tokens: int = 10) -> None:
    """The PINNED table for the model now in assets/, to paste above after a rebuild."""
    checkpoint, model, tokenizer = load_bundled()
    print("PINNED = {")
    for prompt, prompt_lang in PROMPTS.items():
        for lang, lang_id in checkpoint.lang2id.items():
            ids = greedy(model, tokenizer.encode(prompt, prompt_lang), lang_id, n_tokens)
            print(f"    ({prompt!r}, {lang!r}): {ids},  # {tokenizer.decode(ids, lang)}")
    print("}")


if __name__ == "__main__":
    print_pins()
