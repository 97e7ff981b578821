"""The header line and the Model panel say which precision runs."""

import re
from pathlib import Path

import pytest

from xlm_demo.engine import Engine
from xlm_demo.page.header import model_line, model_panel


@pytest.mark.parametrize(
    "options, said",
    [
        ({}, "float32"),
        ({"dtype": "bfloat16"}, "bfloat16 weights, float32 activations"),
        ({"quantize": "int8"}, "int8 linear layers, float32 activations"),
    ],
)
def test_header_and_model_panel_say_which_precision_runs(tiny_model, options, said):
    engine = Engine.load(str(tiny_model[0]), device="cpu", products="torch", **options)
    assert f"in **{said}**" in model_line(engine)
    assert f"- **Precision:** {said}." in model_panel(engine).splitlines()


def test_the_model_panel_says_what_the_loaded_model_learned_from(tiny_model):
    card = (Path(__file__).resolve().parents[2] / "assets" / "xlm-mini-ende" / "README.md").read_text()
    assert "Debian 12 packages" in card and "fortune" in card  # what the bundled model's card says it read
    bundled = model_panel(Engine.load("bundled", device="cpu")).splitlines()[-1]
    assert bundled.startswith("- **Known limitations:** trained on Debian 12's package documentation and fortunes")
    other = model_panel(Engine.load(str(tiny_model[0]), device="cpu")).splitlines()[-1]
    assert other.startswith("- **Known limitations:** trained on the data its model card describes;")


def test_every_key_the_page_takes_is_listed_under_its_buttons():
    from xlm_demo.page.layout import KEYS

    script = (Path(__file__).resolve().parents[2] / "assets" / "shortcuts.js").read_text()
    keys = re.findall(r'key === "(\w+)"', script)
    assert {"arrowright", "backspace", "c", "s", "p", "l"} <= set(keys)
    written = {"arrowright": "→", "backspace": "Backspace"}
    for key in keys:
        assert f"<kbd>{written.get(key, key.upper())}</kbd>" in KEYS, key
    assert "<kbd>1</kbd>–<kbd>9</kbd> pick a candidate" in KEYS
