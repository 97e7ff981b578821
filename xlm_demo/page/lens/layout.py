"""The page's "Inside the model: layer by layer" section: its layout and event wiring."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from ...engine import Engine
from ..guards import MODEL_GROUP
from ..live_plot import live_plot, with_live_figures
from . import events

INTRO = (
    "What the model would predict if it stopped after each layer (the *logit lens*: each layer's hidden state read "
    "through the output projection), for the same tokens under each language id (every position under one id, also "
    "where the continuation was fed with another). Layer 0 is the embeddings; the "
    "last layer is the prediction above. Where the two lines below part is where the language id takes hold. "
    "Patching checks it: from layer k on, the earlier positions carry the other id's hidden states."
)


def build_lens_section(engine: Engine, page_state: gr.Component, reading: Callable[[Callable], Callable]) -> None:
    """The section, closed at first; while open, it follows the page state the renderer holds (each time it
    changes); its model runs go through `reading` (the model tier's)."""
    n_layers = engine.model.config.n_layers
    with gr.Accordion("Inside the model: layer by layer", open=False, elem_id="lens-section") as section:
        gr.Markdown(INTRO)
        with gr.Row():
            target = gr.Dropdown([], label="Target token, followed through the layers", elem_id="lens-target")
            patch_layer = gr.Slider(
                0, n_layers, value=n_layers // 2, step=1, label="Patching layer k", elem_id="patch-layer"
            )
        lens_plot = live_plot(elem_id="lens-plot", container=True)
        summary = gr.Markdown(elem_id="lens-summary")
        language_plot = live_plot(elem_id="lens-language-plot", container=True)
        table = gr.Dataframe(headers=events.table_headers(engine), elem_id="lens-table", interactive=False, wrap=True)
        patching_plot = live_plot(elem_id="patching-plot", container=True)
        patching_summary = gr.Markdown(elem_id="patching-summary")
        gr.Markdown("### The whole text: which language does it read as?")
        verdict = gr.Markdown(elem_id="verdict")
        verdict_plot = live_plot(elem_id="verdict-plot", container=True)
    lens_state = gr.State(None)
    # Kept in the browser, so that a closed section costs the server nothing: whether it is open, and a counter
    # bumped each time the page state changes while it is open.
    is_open = gr.Checkbox(False, visible=False)
    text_changed = gr.Number(0, visible=False)

    views = [lens_plot, summary, language_plot, table, patching_plot, patching_summary, lens_state]
    show = with_live_figures(reading(events.show))
    model_event = {"concurrency_id": MODEL_GROUP, "api_visibility": "private", "show_progress": "hidden"}
    show_inputs, shown = [page_state, patch_layer], [target, *views[:-1], verdict, verdict_plot, lens_state]
    page_state.change(None, [is_open, text_changed], text_changed, js="(open, n) => (open ? n + 1 : n)")
    section.expand(None, None, is_open, js="() => true").then(show, show_inputs, shown, **model_event)
    text_changed.change(show, show_inputs, shown, trigger_mode="always_last", **model_event)
    section.collapse(None, None, is_open, js="() => false")
    retarget, repatch = with_live_figures(events.retarget), with_live_figures(events.repatch)
    target.input(retarget, [lens_state, target, patch_layer], views, api_visibility="private")
    patch_layer.release(repatch, [lens_state, patch_layer], [patching_plot, patching_summary], api_visibility="private")
