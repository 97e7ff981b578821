"""The "Fill the blank" chart: each language id's candidates by the whole text, beside what the left context ranks."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ...engine import Fill
from ...model import languages
from ..look import FONT, percent_axis, shown, styled

ROW_PX, ROW_EXTRA_PX, GAP_PX = 28, 90, 80  # per bar, per language id's row of charts, and between the rows


def left_shares(fill: Fill) -> list[float]:
    """Each listed candidate's p(word | left context), normalised over the candidates listed."""
    logprobs = [c.left_logprob for c in fill.candidates]
    top = max(logprobs)
    weights = [math.exp(logprob - top) for logprob in logprobs]
    return [weight / sum(weights) for weight in weights]


def label(text: str, given: bool) -> str:
    """A candidate as the axis shows it (Plotly reads its text as HTML): a person's own words marked."""
    return shown(text) + (" (yours)" if given else "")


def fill_figure(fills: dict[str, Fill]) -> go.Figure:
    """Per language id, a row: the candidates' shares of the whole text's probability (bars), with their shares by
    the left context alone (outlines), and beside them the left context's own next tokens."""
    langs = list(fills)
    titles = [
        title
        for lang in langs
        for title in (f"Whole text, {languages.name(lang)} id", f"Left context alone, {languages.name(lang)} id")
    ]
    n_bars = [max(len(fills[lang].candidates), len(fills[lang].next_token.candidates)) for lang in langs]
    height = ROW_EXTRA_PX * len(langs) + ROW_PX * sum(n_bars) + 60
    fig = make_subplots(
        rows=len(langs),
        cols=2,
        subplot_titles=titles,
        horizontal_spacing=0.22,
        vertical_spacing=GAP_PX / height,
        row_heights=n_bars,
    )
    for row, lang in enumerate(langs, start=1):
        add_fill_row(fig, fills[lang], row)
    fig.update_annotations(font_size=FONT["size"])
    styled(
        fig,
        height=height,
        title={"text": "Fill the blank: the candidates by the whole text"},
        barmode="overlay",
        legend={"orientation": "h", "y": -0.04},
    )
    return fig.update_layout(margin={"t": 80, "r": 40})  # room for the title above the first row's titles


def add_fill_row(fig: go.Figure, fill: Fill, row: int) -> None:
    """One language id's two charts: the listed candidates, and the left context's next tokens."""
    colour, candidates, shares = languages.colour(fill.lang), fill.candidates, left_shares(fill)
    ranks = list(range(1, len(candidates) + 1))
    hover = [
        f"<b>{shown(c.text)}</b><br>log p(text) = {c.logprob:.3f}<br>share of those listed: {c.prob:.1%}"
        f"<br>p(word | left context) = {math.exp(c.left_logprob):.2%}" + ("<br>your word" if c.given else "")
        for c in candidates
    ]
    fig.add_bar(
        x=[c.prob for c in candidates],
        y=ranks,
        orientation="h",
        name="whole text",
        legendgroup="whole",
        showlegend=row == 1,
        marker_color=colour,
        text=[f"{c.prob:.1%}" for c in candidates],
        textposition="outside",
        cliponaxis=False,
        hovertext=hover,
        hoverinfo="text",
        row=row,
        col=1,
    )
    fig.add_bar(
        x=shares,
        y=ranks,
        orientation="h",
        name="left context alone",
        legendgroup="left",
        showlegend=row == 1,
        marker={"color": "rgba(0,0,0,0)", "line": {"color": "#111827", "width": 2}},
        hoverinfo="skip",
        row=row,
        col=1,
    )
    labels = [label(c.text, c.given) for c in candidates]
    fig.update_yaxes(
        tickvals=ranks, ticktext=labels, autorange="reversed", fixedrange=True, automargin=True, row=row, col=1
    )
    widest = max([*(c.prob for c in candidates), *shares]) * 1.3 + 0.02
    fig.update_xaxes(percent_axis(min(1.0, widest)), fixedrange=True, row=row, col=1)
    following = fill.next_token.candidates
    ranks = [c.rank for c in following]
    fig.add_bar(
        x=[c.prob for c in following],
        y=ranks,
        orientation="h",
        name="next token",
        showlegend=False,
        marker_color=colour,
        opacity=0.55,
        text=[f"{c.prob:.1%}" for c in following],
        textposition="outside",
        cliponaxis=False,
        hovertext=[f"<b>{shown(c.token)}</b><br>piece {shown(c.piece)}<br>p = {c.prob:.4f}" for c in following],
        hoverinfo="text",
        row=row,
        col=2,
    )
    widest = max((c.prob for c in following), default=0.0) * 1.3 + 0.02
    tokens = [shown(c.token) for c in following]
    fig.update_yaxes(
        tickvals=ranks, ticktext=tokens, autorange="reversed", fixedrange=True, automargin=True, row=row, col=2
    )
    fig.update_xaxes(percent_axis(min(1.0, widest)), fixedrange=True, row=row, col=2)
