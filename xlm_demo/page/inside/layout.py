"""The page's 'Inside the model' section: layout and events of the attention and attribution views."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from ...engine import Engine
from ...inside.attribution import MAX_STEPS
from ..guards import MODEL_GROUP
from ..live_plot import live_plot, with_live_figures
from . import events

HOW_TO_READ = (
    "**Attention**: one row per layer and head; each cell is how much that head, at the chosen position, reads "
    "each position before it. Click a row for that head's weights over the text. **Attribution**: how much each "
    "position (split into its token, position and language-id embeddings) raised or lowered the log-probability "
    "of the next token. Both are readings of one computation, not explanations of the model: see docs/reading.md "
    "in the repository."
)


def build_inside(engine: Engine, page_state: gr.Component, reading: Callable[[Callable], Callable]) -> None:
    """The section's components and events, inside the accordion being built, for the page state (requests.py's
    fields) the renderer holds; its model runs share MODEL_GROUP, through `reading` (the model tier's)."""
    config = engine.model.config
    inside = gr.State(events.new_inside())
    gr.Markdown(HOW_TO_READ)
    with gr.Row():
        position = gr.Textbox(label="Position (empty: the last; 0 is the start token)", max_lines=1, elem_id="position")
        difference = gr.Checkbox(False, label="Difference between language ids", elem_id="attention-difference")
        look = gr.Button("Look inside", elem_id="look-inside", variant="primary")
    attention_plot = live_plot(elem_id="attention-plot", container=True)
    with gr.Row():
        layer = gr.Radio(list(range(1, config.n_layers + 1)), label="Layer", elem_id="layer")
        head = gr.Radio(list(range(1, config.n_heads + 1)), label="Head", elem_id="head")
    head_text = gr.HTML(elem_id="head-text")
    with gr.Row():
        method = gr.Radio(
            [(name, key) for key, name in events.METHOD_NAMES.items()],
            value="grad_x_input",
            label="Attribution method",
            elem_id="method",
        )
        steps = gr.Slider(4, MAX_STEPS, value=16, step=4, label="Integration steps", elem_id="steps")
        target = gr.Dropdown([], label="Explain the token", allow_custom_value=True, elem_id="target")
        contrast = gr.Dropdown([], label="rather than", allow_custom_value=True, elem_id="contrast")
    attribution_plot = live_plot(elem_id="attribution-plot", container=True)
    colouring = gr.Radio(events.COLOURINGS, value="score", label="Colour the text by", elem_id="colouring")
    attribution_text = gr.HTML(elem_id="attribution-text")
    attribution_summary = gr.Markdown(elem_id="attribution-summary")

    model_event = {"concurrency_id": MODEL_GROUP, "api_visibility": "private"}
    attention_in = [page_state, position, difference, layer, head, inside]
    attention_out = [attention_plot, layer, head, head_text, inside]
    attribution_in = [page_state, method, steps, target, contrast, colouring, inside]
    attribution_out = [attribution_plot, target, contrast, attribution_text, attribution_summary, inside]
    attend = with_live_figures(reading(events.attention_view))
    explain = with_live_figures(reading(events.attribution_view))
    explain_top = with_live_figures(reading(events.top_attribution_view))
    look.click(attend, attention_in, attention_out, **model_event).then(
        explain_top, [page_state, method, steps, colouring, inside], attribution_out, **model_event
    )
    gr.on([position.submit, difference.input], attend, attention_in, attention_out, **model_event)
    gr.on(
        [method.input, steps.release, target.input, contrast.input],
        explain,
        attribution_in,
        attribution_out,
        **model_event,
    )
    # Cheap views of what is already computed: one at a time, in order, so the last click wins.
    view = {
        "api_visibility": "private",
        "concurrency_limit": 1,
        "trigger_mode": "always_last",
        "show_progress": "hidden",
    }
    gr.on([layer.input, head.input], events.head_view, [inside, layer, head], head_text, **view)
    colouring.input(events.text_view, [inside, colouring], attribution_text, **view)
