"""The header line and the Model panel say which precision runs."""

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
