"""The page's "Inside the model: layer by layer" section: its layout and event wiring."""

from __future__ import annotations

from functools import partial

import gradio as gr

from . import lens_callbacks
from .api import MODEL_GROUP
from .engine import Engine

INTRO = (
    "What the model would predict if it stopped after each layer (the *logit lens*: each layer's hidden state read "
    "through the output projection), for the same tokens under each language id. Layer 0 is the embeddings; the "
    "last layer is the prediction above. Where the two lines below part is where the language id takes hold. "
    "Patching checks it: from layer k on, the earlier positions carry the other id's hidden states."
)


def build_lens_section(
    engine: Engine, prompt: gr.Component, lang: gr.Component, state: gr.State, changed: gr.Component
) -> None:
    """The section, closed at first; it follows the text while open (each time `changed` changes)."""
    n_layers = engine.model.config.n_layers
    with gr.Accordion("Inside the model: layer by layer", open=False, elem_id="inside") as section:
        gr.Markdown(INTRO)
        with gr.Row():
            target = gr.Dropdown([], label="Target token, followed through the layers", elem_id="lens-target")
            patch_layer = gr.Slider(
                0, n_layers, value=n_layers // 2, step=1, label="Patching layer k", elem_id="patch-layer"
            )
        lens_plot = gr.Plot(elem_id="lens-plot", show_label=False)
        summary = gr.Markdown(elem_id="lens-summary")
        language_plot = gr.Plot(elem_id="lens-language-plot", show_label=False)
        table = gr.Dataframe(headers=lens_callbacks.TABLE_HEADERS, elem_id="lens-table", interactive=False, wrap=True)
        patching_plot = gr.Plot(elem_id="patching-plot", show_label=False)
        patching_summary = gr.Markdown(elem_id="patching-summary")
        gr.Markdown("### The whole text: which language does it read as?")
        verdict = gr.Markdown(elem_id="verdict")
        verdict_plot = gr.Plot(elem_id="verdict-plot", show_label=False)
    is_open, inside = gr.State(False), gr.State(None)

    views = [lens_plot, summary, language_plot, table, patching_plot, patching_summary, inside]
    show = partial(lens_callbacks.show_if_open, engine=engine)
    judge = partial(lens_callbacks.verdict_if_open, engine=engine)
    model_event = {"concurrency_id": MODEL_GROUP, "api_visibility": "private", "show_progress": "hidden"}
    inputs, outputs = [is_open, prompt, lang, state, patch_layer], [target, *views]
    expanded = section.expand(lambda: True, None, is_open, api_visibility="private", queue=False)
    for shown in (
        expanded.then(show, inputs, outputs, **model_event),
        changed.change(show, inputs, outputs, trigger_mode="always_last", **model_event),
    ):
        shown.then(judge, [is_open, prompt, lang, state], [verdict, verdict_plot], **model_event)
    section.collapse(lambda: False, None, is_open, api_visibility="private", queue=False)
    target.input(lens_callbacks.retarget, [inside, target, patch_layer], views, api_visibility="private")
    patch_layer.release(
        lens_callbacks.repatch, [inside, patch_layer], [patching_plot, patching_summary], api_visibility="private"
    )
