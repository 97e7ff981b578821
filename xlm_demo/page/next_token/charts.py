"""The next-token section's charts: engine results in, lean Plotly figures out."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ...engine import Comparison, Distribution
from ...model import languages
from ..look import (
    FONT,
    FREE_LABELS,
    LOOK,
    VALUE_LABEL_PX,
    label_margin,
    lean_figure,
    mirrored_percent_axis,
    percent_axis,
    shown,
    styled,
)


def candidates_figure(distribution: Distribution, title: str = "") -> go.Figure:
    """Horizontal bars of the top candidates, most probable on top; sampling's share beside each bar."""
    candidates = distribution.candidates
    ranks = [c.rank for c in candidates]
    labels = [shown(c.token) for c in candidates]
    hover = [
        f"<b>{shown(c.token)}</b><br>id {c.id} · piece {shown(c.piece)}<br>p = {c.prob:.4f} · log p = {c.logprob:.3f}"
        f"<br>rank {c.rank}<br>when sampling: {c.sampling_prob:.4f}"
        for c in candidates
    ]
    bars = {
        "type": "bar",
        "x": [c.prob for c in candidates],
        "y": ranks,
        "orientation": "h",
        "name": "model",
        "marker": {"color": languages.colour(distribution.lang)},
        "text": [f"{c.prob:.1%}" for c in candidates],
        "textposition": "outside",
        "cliponaxis": False,
        "hovertext": hover,
        "hoverinfo": "text",
        "customdata": [c.id for c in candidates],
    }
    reshaped = distribution.sampling.reshapes
    sampled = {  # temperature, top-k or top-p reshaped it: what sampling draws from
        "type": "bar",
        "x": [c.sampling_prob for c in candidates],
        "y": ranks,
        "orientation": "h",
        "name": "after sampling settings",
        "marker": {"color": "rgba(0,0,0,0)", "line": {"color": "#111827", "width": 2}},
        "hoverinfo": "skip",
    }
    drawn = [*bars["x"], *(sampled["x"] if reshaped else [])]  # the outlines as well: sampling may sharpen
    longest = max(drawn, default=0.0)
    return lean_figure(
        [bars, sampled] if reshaped else [bars],
        height=90 + 34 * len(candidates),
        margin={**LOOK["margin"], "l": label_margin(labels), "r": VALUE_LABEL_PX},
        title={"text": title or f"Next token · entropy {distribution.entropy:.2f} nats"},
        barmode="overlay",
        showlegend=reshaped,
        legend={"orientation": "h", "y": -0.08},
        xaxis={**percent_axis(min(1.0, longest * 1.25 + 0.02)), "fixedrange": True, **FREE_LABELS},
        yaxis={"autorange": "reversed", "tickvals": ranks, "ticktext": labels, "fixedrange": True, **FREE_LABELS},
    )


def comparison_figure(comparison: Comparison) -> go.Figure:
    """Mirrored bars on a shared token axis for each pair of language ids: one to the left, the other to the right."""
    pairs = languages.pairs(comparison.distributions)
    fig = make_subplots(rows=len(pairs), cols=1, subplot_titles=[pair_title(comparison, *pair) for pair in pairs])
    rows = 0
    for row, pair in enumerate(pairs, start=1):
        rows += add_pair(fig, comparison, pair, row)
        # Tokens, always: "50" and "1" are tokens too, not numbers on a scale.
        fig.update_yaxes(type="category", autorange="reversed", fixedrange=True, automargin=True, row=row, col=1)
    fig.update_annotations(font_size=FONT["size"])
    styled(
        fig,
        height=110 * len(pairs) + 26 * rows,
        title={
            "text": pair_title(comparison, *pairs[0]) if len(pairs) == 1 else "Same text, each pair of language ids"
        },
        barmode="overlay",
        legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"},
    )
    fig.update_annotations(visible=len(pairs) > 1)
    return fig.update_layout(margin={"b": 70})  # the legend below the tick labels, not over them


def pair_title(comparison: Comparison, left: str, right: str) -> str:
    """The title of one pair's bars, with the KL divergence between them."""
    kl = comparison.kl.get(f"{left}||{right}", 0.0)
    return f"Same text, both language ids · KL({left}‖{right}) = {kl:.3f} nats"


def add_pair(fig: go.Figure, comparison: Comparison, pair: tuple[str, str], row: int) -> int:
    """One pair's mirrored bars in a row of the figure; returns how many tokens the row lists."""
    distributions = {lang: comparison.distributions[lang] for lang in pair}
    prob = {lang: {c.id: c.prob for c in d.candidates} for lang, d in distributions.items()}
    label = {c.id: shown(c.token) for d in reversed(distributions.values()) for c in d.candidates}
    order = sorted(label, key=lambda i: -max(prob[lang].get(i, 0.0) for lang in pair))
    for lang, sign in zip(pair, (-1, 1), strict=True):
        values = [prob[lang].get(i, 0.0) for i in order]
        name = f"{languages.name(lang)} id"
        fig.add_bar(
            x=[sign * v for v in values],
            y=[label[i] for i in order],
            orientation="h",
            name=name,
            legendgroup=lang,
            showlegend=lang not in {trace.legendgroup for trace in fig.data},
            marker_color=languages.colour(lang),
            text=[f"{v:.1%}" if v else "" for v in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{text}<extra>" + name + "</extra>",
            row=row,
            col=1,
        )
    widest = max([*prob[pair[0]].values(), *prob[pair[1]].values(), 0.05]) * 1.3 + 0.02
    fig.update_xaxes(mirrored_percent_axis(widest), fixedrange=True, row=row, col=1)
    return len(order)
