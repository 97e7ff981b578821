"""Pure functions: the layer-by-layer readings in, lean Plotly figures out."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ...inside.lens import LayerReading, LensView, Patching, TextScore
from ...model import languages
from ..look import percent_axis, shown, styled

RANK_BINS = ((1, "1"), (10, "2-10"), (100, "11-100"), (1000, "101-1,000"), (None, "rarer"))  # GLTR's buckets
SCALE_TICKS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)  # probabilities marked on the heatmaps' colour bar


def layer_names(n_layers: int) -> list[str]:
    """Axis labels: layer 0 is the embeddings, the last one the prediction."""
    return ["0 embeddings", *(str(layer) for layer in range(1, n_layers)), f"{n_layers} output"]


def id_name(lang: str) -> str:
    """'German id' for de."""
    return f"{languages.name(lang)} id"


def lens_heatmaps(view: LensView) -> go.Figure:
    """Per language id, layers × tokens: each token's probability read from each layer; the target comes first."""
    langs = list(view.lenses)
    fig = make_subplots(rows=1, cols=len(langs), shared_yaxes=True, horizontal_spacing=0.03)
    n_layers = len(next(iter(view.grid.values()))) - 1
    layers = list(range(n_layers + 1))
    columns = list(range(len(view.columns)))
    labels = [f"<b>{shown(c.token)}</b>" if i == 0 else shown(c.token) for i, c in enumerate(view.columns)]
    highest = max(t.prob for grid in view.grid.values() for row in grid for t in row)
    ticks = [p for p in SCALE_TICKS if p <= highest] or [SCALE_TICKS[0]]
    for index, lang in enumerate(langs, start=1):
        grid = view.grid[lang]
        fig.add_heatmap(
            z=[[math.sqrt(t.prob) for t in row] for row in grid],  # square root: small probabilities stay visible
            x=columns,
            y=layers,
            zmin=0,
            zmax=math.sqrt(max(highest, ticks[-1])),
            colorscale="Blues",
            showscale=index == len(langs),
            colorbar={"tickvals": [math.sqrt(p) for p in ticks], "ticktext": [f"{p:.0%}" for p in ticks]},
            text=[[f"{t.prob:.0%}" if t.prob >= 0.01 else "" for t in row] for row in grid],
            texttemplate="%{text}",
            customdata=[[[shown(t.token), t.rank, t.prob] for t in row] for row in grid],
            hovertemplate="<b>%{customdata[0]}</b> at layer %{y}<br>p = %{customdata[2]:.4f} · rank %{customdata[1]}"
            f"<extra>{id_name(lang)}</extra>",
            row=1,
            col=index,
        )
        fig.update_xaxes(tickvals=columns, ticktext=labels, tickangle=-40, fixedrange=True, row=1, col=index)
        fig.add_annotation(
            text=id_name(lang),
            x=0.5,
            y=1.0,
            xref="x domain" if index == 1 else f"x{index} domain",
            yref="paper",
            yanchor="bottom",
            showarrow=False,
            font={"size": 18, "color": languages.colour(lang)},
        )
    fig.update_yaxes(tickvals=layers, ticktext=layer_names(n_layers), fixedrange=True, automargin=True)
    styled(fig, height=230 + 42 * len(layers), title={"text": "What each layer would predict (the target first)"})
    # Room for the title and each id's name above, and the slanted tokens below (automargin squeezes angled ticks).
    return fig.update_layout(margin={"t": 90, "b": 100})


def hover(lang: str, reading: LayerReading) -> str:
    """One layer's reading in a hover box."""
    mass = " · ".join(f"{mass_name(kind)} {value:.0%}" for kind, value in reading.subword_mass.items())
    top = ", ".join(shown(c.token) for c in reading.candidates[:3])
    return (
        f"<b>{id_name(lang)} · layer {reading.layer}</b><br>{mass}"
        f"<br>entropy {reading.entropy:.2f} nats · KL to final {reading.kl_to_final:.2f}"
        f"<br>target {shown(reading.target.token)}: p = {reading.target.prob:.3f}, rank {reading.target.rank}"
        f"<br>top: {top}"
    )


def mass_name(kind: str) -> str:
    """'German-only' for de, 'shared' for shared."""
    return kind if kind == "shared" else f"{languages.name(kind)}-only"


def focus_mass_lines(view: LensView, parting: int | None) -> go.Figure:
    """The focus language's subword mass by layer (German for de/en), one line per language id; a marker where the
    lines part."""
    fig = go.Figure()
    for lang, lens in view.lenses.items():
        fig.add_scatter(
            x=[r.layer for r in lens.layers],
            y=[r.subword_mass[view.focus] for r in lens.layers],
            name=id_name(lang),
            mode="lines+markers",
            line={"color": languages.colour(lang), "width": 4},
            marker={"size": 10},
            hovertext=[hover(lang, r) for r in lens.layers],
            hoverinfo="text",
        )
    n_layers = len(next(iter(view.lenses.values())).layers) - 1
    if parting is not None:
        fig.add_vline(x=parting, line={"color": "#111827", "dash": "dot", "width": 2})
        fig.add_annotation(
            x=parting, y=1.0, yref="paper", text=f"the ids part: layer {parting}", showarrow=False, xanchor="left"
        )
    return styled(
        fig,
        height=360,
        title={"text": f"Probability on {mass_name(view.focus)} subwords, layer by layer"},
        legend={"orientation": "h", "y": -0.25},
        xaxis={"tickvals": list(range(n_layers + 1)), "ticktext": layer_names(n_layers), "fixedrange": True},
        yaxis={**percent_axis(1.0), "fixedrange": True, "automargin": True},
    )


def patching_lines(patching: dict[str, Patching], focus: str, finals: dict[str, float], chosen: int) -> go.Figure:
    """The focus language's subword mass of each patched run's final distribution by k, beside each id's own
    (dashed)."""
    fig = go.Figure()
    for lang, runs in patching.items():
        colour = languages.colour(lang)
        fig.add_hline(y=finals[lang], line={"color": colour, "dash": "dash", "width": 2})
        fig.add_scatter(
            x=[r.layer for r in runs.runs],
            y=[r.subword_mass[focus] for r in runs.runs],
            name=f"{id_name(lang)}, earlier positions {id_name(runs.other)} from layer k on",
            mode="lines+markers",
            line={"color": colour, "width": 4},
            marker={"size": 10, "symbol": "diamond"},
            hovertext=[
                f"<b>k = {r.layer}</b><br>{mass_name(focus)} {r.subword_mass[focus]:.0%}<br>KL to {lang} alone "
                f"{r.kl_to_own:.2f} · to {runs.other} alone {r.kl_to_other:.2f}<br>top: "
                + ", ".join(shown(c.token) for c in r.candidates[:3])
                for r in runs.runs
            ],
            hoverinfo="text",
        )
    n_layers = len(next(iter(patching.values())).runs) - 1
    fig.add_vline(x=chosen, line={"color": "#111827", "dash": "dot", "width": 2})
    return styled(
        fig,
        height=380,
        title={
            "text": f"Patching: {mass_name(focus)} mass when the context switches id from layer k on (dashed: none)"
        },
        legend={"orientation": "h", "y": -0.3},
        xaxis={"tickvals": list(range(n_layers + 1)), "title": {"text": "k (layer)"}, "fixedrange": True},
        yaxis={**percent_axis(1.0), "fixedrange": True, "automargin": True},
    )


def rank_counts(ranks: list[int]) -> list[int]:
    """How many ranks fall in each of RANK_BINS."""
    counts = [0] * len(RANK_BINS)
    for rank in ranks:
        counts[next(i for i, (top, _) in enumerate(RANK_BINS) if top is None or rank <= top)] += 1
    return counts


def rank_histogram(scores: dict[str, TextScore]) -> go.Figure:
    """GLTR's view of a whole text: how many of its tokens were the model's 1st choice, in its top 10, ..."""
    fig = go.Figure()
    labels = [label for _, label in RANK_BINS]
    for lang, score in scores.items():
        counts = rank_counts(score.ranks)
        total = max(len(score.ranks), 1)
        fig.add_bar(
            x=labels,
            y=[c / total for c in counts],
            name=id_name(lang),
            marker_color=languages.colour(lang),
            text=[str(c) for c in counts],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="rank %{x}: %{text} tokens (%{y:.0%})<extra>" + id_name(lang) + "</extra>",
        )
    return styled(
        fig,
        height=320,
        title={"text": "Rank of each token given its prefix"},
        legend={"orientation": "h", "y": -0.2},
        barmode="group",
        xaxis={"fixedrange": True},
        yaxis={**percent_axis(1.1), "fixedrange": True, "automargin": True},
    )
