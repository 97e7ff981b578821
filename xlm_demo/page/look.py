"""The charts' shared look: type, colours, margins, and lean figures built from plain dicts."""

from __future__ import annotations

import html

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
    """A token as Plotly's HTML-like text shows it: </s> would otherwise vanish as a tag."""
    return html.escape(token)
