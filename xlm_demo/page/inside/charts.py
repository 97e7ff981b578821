"""Pure functions for the 'Inside the model' views: attention and attribution data in, Plotly figures out."""

from __future__ import annotations

import plotly.graph_objects as go

from ..look import BLUE, shown, styled

MAX_DRAWN = 64  # positions a chart draws; the model always reads the whole text
PART_COLOURS = {"token": "#0f766e", "position": "#9ca3af", "language": "#7c3aed"}  # teal, grey, violet
PART_NAMES = {"token": "token embedding", "position": "position embedding", "language": "language id"}


def drawn_positions(importance: list[float], limit: int = MAX_DRAWN) -> list[int]:
    """The `limit` most important positions, in text order (all of them when there are few)."""
    if len(importance) <= limit:
        return list(range(len(importance)))
    return sorted(sorted(range(len(importance)), key=lambda i: -importance[i])[:limit])


def position_labels(tokens: list[str], positions: list[int]) -> list[str]:
    """Tick labels that stay apart when a token repeats: the token (already shown()) and its position."""
    return [f"{tokens[i]} ·{i}" for i in positions]


def attention_figure(
    weights: list[list[list[float]]], tokens: list[str], position: int, difference: str | None = None
) -> go.Figure:
    """One row per layer and head, one column per position: how much that head's query looks at each token.

    `weights` is layers × heads × (position + 1); with `difference` (e.g. "English − German") it holds the
    difference of two maps and is drawn on a diverging scale.
    """
    n_layers, n_heads = len(weights), len(weights[0])
    tokens = [shown(token) for token in tokens]
    rows = [head for layer in weights for head in layer]  # (L·H) × (position + 1)
    drawn = drawn_positions([max(abs(row[i]) for row in rows) for i in range(position + 1)])
    z = [[row[i] for i in drawn] for row in rows]
    sign = "+" if difference else ""
    hover = [
        [
            f"layer {r // n_heads + 1} · head {r % n_heads + 1}<br>→ {tokens[i]} (position {i}): {row[i]:{sign}.3f}"
            for i in drawn
        ]
        for r, row in enumerate(rows)
    ]
    scale = {"colorscale": "RdBu", "zmid": 0} if difference else {"colorscale": "Blues", "zmin": 0}
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(len(drawn))),
            y=list(range(len(rows))),
            hovertext=hover,
            hoverinfo="text",
            xgap=1,
            ygap=1,
            colorbar={"thickness": 12, "len": 0.6, "title": {"text": difference or "weight", "side": "right"}},
            **scale,
        )
    )
    for layer in range(1, n_layers):  # a rule between layers
        fig.add_hline(y=layer * n_heads - 0.5, line={"color": "#111827", "width": 1})
    note = f" · the {len(drawn)} most attended of {position + 1} positions" if len(drawn) < position + 1 else ""
    title = f"{difference} attention" if difference else "Attention"
    return styled(
        fig,
        height=140 + 13 * len(rows),
        title={"text": f"{title} of position {position} ({tokens[position]}), every layer and head{note}"},
        xaxis={
            "tickvals": list(range(len(drawn))),
            "ticktext": position_labels(tokens, drawn),
            "tickangle": -60,
            "fixedrange": True,
        },
        yaxis={
            "tickvals": [layer * n_heads + (n_heads - 1) / 2 for layer in range(n_layers)],
            "ticktext": [f"layer {layer + 1}" for layer in range(n_layers)],
            "autorange": "reversed",
            "fixedrange": True,
        },
    ).update_layout(margin={"l": 70, "r": 20, "t": 50, "b": 90}, font_size=13)


def attribution_figure(tokens: list[dict], title: str) -> go.Figure:
    """Each position's attribution as stacked token, position and language shares, with its total marked.

    `tokens` are the API's rows: id, token, score, token_part, position_part, language_part.
    """
    drawn = drawn_positions([abs(t["score"]) for t in tokens])
    x = list(range(len(drawn)))
    fig = go.Figure()
    for part, colour in PART_COLOURS.items():
        values = [tokens[i][f"{part}_part"] for i in drawn]
        fig.add_bar(
            x=x,
            y=values,
            name=PART_NAMES[part],
            marker_color=colour,
            hovertemplate="%{y:+.4f}<extra>" + PART_NAMES[part] + "</extra>",
        )
    fig.add_scatter(
        x=x,
        y=[tokens[i]["score"] for i in drawn],
        mode="markers",
        name="position's total",
        marker={"color": "#111827", "symbol": "line-ew-open", "size": 18, "line": {"width": 3}},
        hovertemplate="%{y:+.4f}<extra>total</extra>",
    )
    note = f" · the {len(drawn)} largest of {len(tokens)} positions" if len(drawn) < len(tokens) else ""
    return styled(
        fig,
        height=380,
        title={"text": title + note},
        barmode="relative",
        legend={"orientation": "h", "y": -0.35},
        xaxis={
            "tickvals": x,
            "ticktext": position_labels([shown(t["token"]) for t in tokens], drawn),
            "tickangle": -60,
            "fixedrange": True,
        },
        yaxis={"zeroline": True, "zerolinecolor": BLUE, "fixedrange": True, "automargin": True},
    ).update_layout(margin={"l": 10, "r": 20, "t": 50, "b": 100}, font_size=13)
