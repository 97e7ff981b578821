"""Pure functions: engine results in, lean Plotly figures out."""

from __future__ import annotations

import plotly.graph_objects as go

from .engine import Comparison, Distribution, Step

FONT = {"family": "Inter, system-ui, sans-serif", "size": 16}
BLUE, ORANGE, GREY = "#2563eb", "#ea580c", "#9ca3af"
LANG_COLOURS = {"en": BLUE, "de": ORANGE}
LANG_NAMES = {"en": "English", "de": "German"}


def _layout(fig: go.Figure, height: int, **extra) -> go.Figure:
    """The shared, lean look: no template payload, large type, tight margins."""
    fig.update_layout(
        template="none",
        font=FONT,
        height=height,
        margin={"l": 10, "r": 20, "t": 40, "b": 40},
        hoverlabel={"font_size": 16},
        bargap=0.25,
        **extra,
    )
    return fig


def candidates_figure(distribution: Distribution, title: str = "") -> go.Figure:
    """Horizontal bars of the top candidates, most probable on top; sampling's share beside each bar."""
    candidates = distribution.candidates
    ranks = [c.rank for c in candidates]
    labels = [c.token for c in candidates]
    hover = [
        f"<b>{c.token}</b><br>id {c.id} · piece {c.piece}<br>p = {c.prob:.4f} · log p = {c.logprob:.3f}"
        f"<br>rank {c.rank}<br>when sampling: {c.sampling_prob:.4f}"
        for c in candidates
    ]
    fig = go.Figure(
        go.Bar(
            x=[c.prob for c in candidates],
            y=ranks,
            orientation="h",
            name="model",
            marker_color=LANG_COLOURS.get(distribution.lang, BLUE),
            text=[f"{c.prob:.1%}" for c in candidates],
            textposition="outside",
            cliponaxis=False,
            hovertext=hover,
            hoverinfo="text",
            customdata=[c.id for c in candidates],
        )
    )
    reshaped = distribution.sampling.reshapes
    if reshaped:  # temperature, top-k or top-p reshaped it: show what sampling draws from
        fig.add_bar(
            x=[c.sampling_prob for c in candidates],
            y=ranks,
            orientation="h",
            name="after sampling settings",
            marker={"color": "rgba(0,0,0,0)", "line": {"color": "#111827", "width": 2}},
            hoverinfo="skip",
        )
    longest = max((c.prob for c in candidates), default=0.0)
    return _layout(
        fig,
        height=90 + 34 * len(candidates),
        title={"text": title or f"Next token · entropy {distribution.entropy:.2f} nats"},
        barmode="overlay",
        showlegend=reshaped,
        legend={"orientation": "h", "y": -0.08},
        xaxis={"tickformat": ".0%", "range": [0, min(1.0, longest * 1.25 + 0.02)], "fixedrange": True},
        yaxis={"autorange": "reversed", "tickvals": ranks, "ticktext": labels, "fixedrange": True, "automargin": True},
    )


def comparison_figure(comparison: Comparison) -> go.Figure:
    """Mirrored bars on a shared token axis: one language id to the left, the other to the right."""
    (left_lang, left), (right_lang, right) = list(comparison.distributions.items())[:2]
    prob = {lang: {c.id: c.prob for c in d.candidates} for lang, d in ((left_lang, left), (right_lang, right))}
    label = {c.id: c.token for d in (right, left) for c in d.candidates}
    order = sorted(label, key=lambda i: -max(prob[left_lang].get(i, 0.0), prob[right_lang].get(i, 0.0)))
    fig = go.Figure()
    for lang, sign in ((left_lang, -1), (right_lang, 1)):
        values = [prob[lang].get(i, 0.0) for i in order]
        name = f"{LANG_NAMES.get(lang, lang)} id"
        fig.add_bar(
            x=[sign * v for v in values],
            y=[label[i] for i in order],
            orientation="h",
            name=name,
            marker_color=LANG_COLOURS.get(lang, GREY),
            text=[f"{v:.1%}" if v else "" for v in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{text}<extra>" + name + "</extra>",
        )
    widest = max([*prob[left_lang].values(), *prob[right_lang].values(), 0.05]) * 1.3 + 0.02
    tick = widest * 0.75
    kl = comparison.kl.get(f"{left_lang}||{right_lang}", 0.0)
    return _layout(
        fig,
        height=110 + 26 * len(order),
        title={"text": f"Same text, both language ids · KL({left_lang}‖{right_lang}) = {kl:.3f} nats"},
        barmode="overlay",
        legend={"orientation": "h", "y": -0.05},
        xaxis={
            "range": [-widest, widest],
            "tickvals": [-tick, 0, tick],
            "ticktext": [f"{tick:.0%}", "0", f"{tick:.0%}"],
            "fixedrange": True,
        },
        yaxis={"autorange": "reversed", "fixedrange": True, "automargin": True},
    )


def timeline_figure(steps: list[Step]) -> go.Figure:
    """Per continued token: the entropy it was chosen under, and the chosen token's probability."""
    index = list(range(1, len(steps) + 1))
    fig = go.Figure()
    fig.add_bar(
        x=index,
        y=[s.prob for s in steps],
        name="chosen token's probability",
        marker_color=BLUE,
        hovertext=[f"{s.token}: p = {s.prob:.3f}, rank {s.rank}" for s in steps],
        hoverinfo="text",
    )
    fig.add_scatter(
        x=index,
        y=[s.distribution.entropy for s in steps],
        name="entropy (nats)",
        yaxis="y2",
        mode="lines+markers",
        line={"color": ORANGE, "width": 3},
    )
    return _layout(
        fig,
        height=260,
        title={"text": "Continuation so far"},
        legend={"orientation": "h", "y": -0.25},
        xaxis={"tickvals": index, "ticktext": [s.token for s in steps], "fixedrange": True},
        yaxis={"range": [0, 1], "tickformat": ".0%", "fixedrange": True, "automargin": True},
        yaxis2={"overlaying": "y", "side": "right", "rangemode": "tozero", "fixedrange": True},
    )
