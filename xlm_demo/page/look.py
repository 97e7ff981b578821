"""The charts' shared look: type, colours, margins, and lean figures built from plain dicts."""

from __future__ import annotations

import html
import math

import plotly.graph_objects as go

FONT = {"family": "Inter, system-ui, sans-serif", "size": 16}

BLUE, ORANGE = "#2563eb", "#ea580c"

LOOK = {
    "template": {"data": {"scatter": [{"type": "scatter"}]}},  # plotly's "none" template, spelled out
    "font": FONT,
    "margin": {"l": 10, "r": 20, "t": 40, "b": 40},
    "hoverlabel": {"font_size": 16},
    "bargap": 0.25,
}

# The candidates' left margin, sized here from the longest label: Plotly's automargin measures the labels in the
# page and then draws the chart a second time, 20 ms of every event in Chromium. For the same reason the per-event
# charts' tick labels may overflow (FREE_LABELS): checking that they do not measures each label, 6 ms a draw.
FREE_LABELS = {"ticklabeloverflow": "allow"}

LABEL_PX_PER_CHAR, LABEL_PX_MIN, LABEL_PX_MAX = 10, 40, 240

# Room beside a bar for its value label ("35.7%") at the charts' type: the right margin where labels spill over.
VALUE_LABEL_PX = 64

# Steps from 0 to a percent axis's end, at most: the fewest Plotly's own ticks make on a narrow chart, so the labels
# fit on a phone and in presenter type as well as on the page.
PERCENT_STEPS = 5


def styled(fig: go.Figure, height: int, **extra) -> go.Figure:
    """The shared, lean look: no template payload, large type, tight margins."""
    fig.update_layout(**{**LOOK, "template": "none"}, height=height, **extra)
    return fig


def lean_figure(traces: list[dict], **layout) -> go.Figure:
    """A figure from plain dicts in the shared look, without plotly's validation: 0.3 ms against 7 ms for the
    charts every event redraws (their fields are fixed here and drawn in the browser tests)."""
    return go.Figure(data=traces, layout={**LOOK, **layout}, _validate=False)


def label_margin(labels: list[str]) -> int:
    """Pixels to the left of the bars that the longest label needs at the chart's font size."""
    return min(LABEL_PX_MAX, max(LABEL_PX_MIN, 16 + LABEL_PX_PER_CHAR * max(map(len, labels), default=0)))


def shown(token: str) -> str:
    """A token as every chart's text (ticks, hover, bars, titles) must be handed to Plotly to read as written.

    Plotly reads <…> as a tag (</s> would close a strike-through and vanish) and &…; as an entity, decoding only
    &lt; &gt; &amp; (a few symbols and numeric ones besides): so &, < and > are escaped, and quotes are not
    (&quot; would show as written).
    """
    return html.escape(token, quote=False)


def percent_step(top: float) -> tuple[float, int]:
    """The tick step of a percent axis from 0 to `top` (the smallest 1, 2 or 5 times a power of ten that makes at
    most PERCENT_STEPS steps), and the decimals its labels need to tell every tick apart."""
    rough = top / PERCENT_STEPS
    exponent = math.floor(math.log10(rough))
    mantissa = next(m for m in (1, 2, 5, 10) if m * 10.0**exponent >= rough)
    if mantissa == 10:  # rough was just above 5 × 10^exponent
        mantissa, exponent = 1, exponent + 1
    return mantissa * 10.0**exponent, max(0, -exponent - 2)  # a step of 5 × 10^-3 is 0.5%: one decimal


def percent_axis(top: float) -> dict:
    """Plotly axis keys for probabilities from 0 to `top`: a tick every step, labelled with the decimals the step
    needs (trailing zeros trimmed), the same at any width (Plotly's own step depends on the width, and its labels
    repeat when the format does not follow it)."""
    step, decimals = percent_step(top)
    return {"range": [0, top], "tickmode": "linear", "tick0": 0, "dtick": step, "tickformat": f".{decimals}~%"}


def percent_label(value: float, decimals: int) -> str:
    """A probability as d3's ".{decimals}~%" writes it, trailing zeros trimmed: "0.5%", "1%"."""
    number = f"{value * 100:.{decimals}f}"
    return f"{number.rstrip('0').rstrip('.') if '.' in number else number}%"


def mirrored_percent_axis(top: float) -> dict:
    """Plotly axis keys for probabilities from `top` on the left, through 0, to `top` on the right: the step of a
    percent axis as long as both sides together, each tick labelled with its probability."""
    step, decimals = percent_step(2 * top)
    values = [k * step for k in range(-math.floor(top / step), math.floor(top / step) + 1)]
    return {
        "range": [-top, top],
        "tickmode": "array",
        "tickvals": values,
        "ticktext": [percent_label(abs(value), decimals) for value in values],
    }
