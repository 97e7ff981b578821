"""A Plotly chart the page redraws in place: every chart of the page is one.

gr.Plot re-creates its chart for every new figure and draws it twice (on the chart it drops, then on a new one):
30-70 ms of each event in Chromium at 300 words, and most of the browser's work while Continue streams. A live plot
is a gr.HTML whose value is the figure's JSON; a few lines of JavaScript hand each new figure to Plotly.react on
one div that stays, so Plotly draws once and only what changed. Plotly is the copy bundled with the plotly package,
served by this server, so the page needs no network.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import gradio as gr
import plotly
import plotly.graph_objects as go

PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"

DRAW = """
const plotly = window.Plotly;  // the plotly package's copy, loaded by the component's head
const chart = element.querySelector('.live-plot');
const id = () => chart.closest('.block')?.id || 'chart';  // the component's elem_id, once on the page
// The camera saves a PNG, the button beside it an SVG: Plotly's own image export, for slides.
const config = () => ({
  displaylogo: false,
  toImageButtonOptions: {format: 'png', scale: 2, filename: `xlm-${id()}`},
  modeBarButtonsToAdd: [{
    name: 'Download plot as SVG', icon: plotly.Icons.disk,
    click: (div) => plotly.downloadImage(div, {format: 'svg', filename: `xlm-${id()}`}),
  }],
});
// Presenter mode: the candidates' type 1.75 times as large (labels of 28 px) and as high as the screen allows; the
// other charts' type 1.3 times.
const projected = (layout) => {
  if (!document.body.classList.contains('presenter')) return layout;
  const scale = id() === 'candidates-plot' ? 1.75 : 1.3;
  const size = (font) => ({...font, size: Math.round((font?.size ?? 16) * scale)});
  const widened = (side) => Math.round((layout.margin?.[side] ?? 80) * scale);
  const margin = {...layout.margin, l: widened('l'), r: widened('r')};
  const fitted = {...layout, font: size(layout.font), title: {...layout.title, font: size(layout.font)}, margin};
  if (id() !== 'candidates-plot') return fitted;
  const top = element.getBoundingClientRect().top + window.scrollY;
  return {...fitted, height: Math.max(360, window.innerHeight - top - 24)};
};
const draw = () => {
  chart.classList.toggle('no-figure', !props.value);  // the page's CSS hides a live plot without one
  if (!props.value) return plotly.purge(chart);
  const figure = JSON.parse(props.value);
  plotly.react(chart, figure.data, projected(figure.layout), config());
};
draw();
watch('value', draw);
document.addEventListener('presenter', draw);  // P switched presenter mode
// Drawn to the width it has: when the page settles, the window changes or the plot is shown again.
let drawnWidth = 0;
new ResizeObserver(([entry]) => {
  const width = Math.round(entry.contentRect.width);
  if (width === 0 || width === drawnWidth || chart.classList.contains('no-figure')) return;  // 0: hidden
  drawnWidth = width;
  plotly.Plots.resize(chart);
}).observe(element);
"""


def live_plot(**options) -> gr.HTML:
    """The component: `options` as gr.HTML takes them (elem_id, container, …); bind its events' callbacks through
    `with_live_figures`, so that the figures they return become its values."""
    gr.set_static_paths([PLOTLY_JS])
    return gr.HTML(
        "",
        html_template='<div class="live-plot"></div>',
        js_on_load=DRAW,
        head=f'<script src="gradio_api/file={quote(str(PLOTLY_JS))}"></script>',  # relative: works under a root path
        elem_classes=["live-plot-block"],  # for the page's CSS, which hides one without a figure
        **options,
    )


def with_live_figures(callback: Callable) -> Callable:
    """The callback (a function or a generator) with every figure it returns or yields as a live plot's value."""

    def converted(outputs):
        values = outputs if isinstance(outputs, tuple) else (outputs,)
        values = tuple(value.to_json() if isinstance(value, go.Figure) else value for value in values)
        return values if isinstance(outputs, tuple) else values[0]

    if inspect.isgeneratorfunction(getattr(callback, "func", callback)):  # a partial's own function

        @functools.wraps(callback)
        def streamed(*args, **kwargs):
            for outputs in callback(*args, **kwargs):
                yield converted(outputs)

        return streamed

    @functools.wraps(callback)
    def run(*args, **kwargs):
        return converted(callback(*args, **kwargs))

    return run
