"""Chart labels without a browser: what Plotly is handed for a token, and the percent axes' ticks."""

import html
import re

import pytest

from xlm_demo.page.look import (
    PERCENT_STEPS,
    mirrored_percent_axis,
    percent_axis,
    percent_label,
    percent_step,
    shown,
)

TOKENS = ['"', "'", "<", ">", "&", "</s>", "<special1>", "<b>", "<br>", "&lt;", "&#34;", "&quot;", "R&D", "l'homme"]


@pytest.mark.parametrize(
    ("token", "handed"),
    [('"', '"'), ("'", "'"), ("&", "&amp;"), ("</s>", "&lt;/s&gt;"), ("<special1>", "&lt;special1&gt;"),
     ("&lt;", "&amp;lt;"), ("&#34;", "&amp;#34;"), ("R&D", "R&amp;D")],
)  # fmt: skip
def test_a_token_is_handed_to_plotly_with_only_ampersands_and_angle_brackets_escaped(token, handed):
    assert shown(token) == handed


@pytest.mark.parametrize("token", TOKENS)
def test_what_plotly_decodes_of_a_shown_token_is_the_token(token):
    handed = shown(token)
    assert "<" not in handed  # no tag for Plotly to read
    assert re.findall(r"&[#\w]*;", handed) == re.findall(r"&(?:amp|lt|gt);", handed)  # entities it decodes, only
    assert html.unescape(handed) == token


@pytest.mark.parametrize(
    ("top", "step", "decimals"),
    [(0.0227, 0.005, 1), (0.035, 0.01, 0), (0.06, 0.02, 0), (0.1, 0.02, 0), (0.5, 0.1, 0), (0.995, 0.2, 0),
     (1.0, 0.2, 0), (1.1, 0.5, 0), (0.0012, 0.0005, 2)],
)  # fmt: skip
def test_the_tick_step_is_one_two_or_five_times_a_power_of_ten_with_the_decimals_it_needs(top, step, decimals):
    assert percent_step(top) == (pytest.approx(step), decimals)


@pytest.mark.parametrize(
    ("value", "decimals", "label"),
    [(0.0, 1, "0%"), (0.005, 1, "0.5%"), (0.01, 1, "1%"), (0.015, 1, "1.5%"), (0.2, 0, "20%"), (1.0, 0, "100%"),
     (0.0005, 2, "0.05%"), (0.001, 2, "0.1%")],
)  # fmt: skip
def test_a_label_is_written_as_d3_writes_the_axis_format_trailing_zeros_trimmed(value, decimals, label):
    assert percent_label(value, decimals) == label


def tick_labels(axis: dict) -> list[str]:
    """The labels a percent_axis draws: a tick every dtick from 0, written as its tickformat (".{decimals}~%")."""
    step, decimals = axis["dtick"], int(axis["tickformat"].removeprefix(".").removesuffix("~%"))
    return [percent_label(k * step, decimals) for k in range(int(axis["range"][1] / step + 1e-9) + 1)]


@pytest.mark.parametrize("top", [0.0013 * 1.37**i for i in range(22)] + [1.0, 1.1])
def test_no_tick_label_repeats_and_few_are_drawn(top):
    labels = tick_labels(percent_axis(top))
    assert len(set(labels)) == len(labels), labels
    assert 3 <= len(labels) <= PERCENT_STEPS + 1


def test_a_flat_distribution_is_ticked_every_half_percent_with_a_decimal():
    axis = percent_axis(1 / 468 * 1.25 + 0.02)  # the candidates' axis for a flat distribution over 468 tokens
    assert axis["tickmode"] == "linear" and axis["tick0"] == 0
    assert axis["tickformat"] == ".1~%"
    assert tick_labels(axis) == ["0%", "0.5%", "1%", "1.5%", "2%"]


def test_a_mirrored_axis_labels_both_sides_alike_and_neither_repeats():
    axis = mirrored_percent_axis(0.7)
    assert axis["range"] == [-0.7, 0.7]
    assert axis["ticktext"] == ["50%", "0%", "50%"]
    assert mirrored_percent_axis(1.0)["ticktext"] == ["100%", "50%", "0%", "50%", "100%"]
