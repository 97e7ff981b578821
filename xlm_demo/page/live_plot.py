"""A Plotly chart the page redraws in place: every chart of the page is one.

gr.Plot re-creates its chart for every new figure and draws it twice (on the chart it drops, then on a new one):
30-70 ms of each event in Chromium at 300 words, and most of the browser's work while Continue streams. A live plot
is a gr.HTML whose value is the figure's JSON, handed to the renderer (assets/view.js), which draws it with
Plotly.react on one div that stays, so Plotly draws once and only what changed. The next-token chart and the
timeline are live plots the renderer draws from view records, without a value of their own. Plotly is the copy
bundled with the plotly package, served by this server, so the page needs no network.
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
const chart = element.querySelector('.live-plot');
const drawn = () => window.xlmCharts.draw(chart, props.value ? JSON.parse(props.value) : null);  // assets/view.js
drawn();
watch('value', drawn);
"""


def live_plot(from_records: bool = False, **options) -> gr.HTML:
    """The component: `options` as gr.HTML takes them (elem_id, container, …); bind its events' callbacks through
    `with_live_figures`, so that the figures they return become its values. `from_records`: the renderer draws it
    from view records, and it has no value of its own."""
    gr.set_static_paths([PLOTLY_JS])
    return gr.HTML(
        "",
        html_template='<div class="live-plot no-figure"></div>',
        js_on_load=None if from_records else DRAW,
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
