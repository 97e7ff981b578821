"""The page's layout and event wiring: the next-token section, and where the other sections go. Typing, Step, pick,
Undo, Reset, Continue and Stop go to the view route beside Gradio's queue (next_token/routes.py) through the
renderer (assets/view.js); Gradio's events here only tell the renderer, in the browser. The sections that take
seconds stay queued Gradio events."""

from __future__ import annotations

from dataclasses import dataclass, fields

import gradio as gr

from ..engine import Engine
from ..model import languages
from .fill.layout import build_fill_section
from .follow.layout import build_sharing, shown_to_room
from .guards import MODEL_GROUP, ROOM_GROUP
from .header import model_line, model_panel
from .inside.layout import build_inside
from .lens.layout import build_lens_section
from .live_plot import live_plot, with_live_figures
from .next_token import export, side_by_side
from .next_token.routes import ViewRoutes
from .requests import MAX_CANDIDATES, MAX_CONTINUE, read_share_link
from .state import DEFAULT_PROMPT
from .tier import InProcessTier, ModelTier

# The page state as the renderer holds it (assets/view.js), in the fields page/requests.py reads: the renderer sets
# this component's value whenever the controls or the view shown change, and the sections' events read it.
FOLLOW_THE_RENDERER = "window.xlmView.follow((state) => { props.value = state; });"

# The keys of assets/shortcuts.js, where the buttons they press are.
KEYS = (
    '<p class="keys">Keys, outside the text box: <kbd>→</kbd> Step · <kbd>1</kbd>–<kbd>9</kbd> pick a candidate · '
    "<kbd>C</kbd> Continue · <kbd>S</kbd> Stop · <kbd>Backspace</kbd> Undo · <kbd>L</kbd> the other language id · "
    "<kbd>P</kbd> presenter mode</p>"
)


def title(engine: Engine) -> str:
    """The page's title, naming the checkpoint's languages."""
    return f"XLM {'/'.join(map(languages.name, languages.ordered(engine.lang2id)))} explorer"


@dataclass(frozen=True)
class Controls:
    """The controls every view depends on, declared once: the renderer is told their values by these names."""

    prompt: gr.Textbox
    lang: gr.Radio
    top_k: gr.Slider
    literal: gr.Checkbox
    continue_lang: gr.Radio
    n_tokens: gr.Slider
    sample: gr.Checkbox
    temperature: gr.Slider
    sample_top_k: gr.Slider
    top_p: gr.Slider
    seed: gr.Number

    def values(self) -> list[gr.Component]:
        """The controls, as a browser-only event's inputs."""
        return [getattr(self, field.name) for field in fields(self)]

    def told(self, method: str) -> str:
        """A browser-only event's js: the renderer's `method` called with the controls' values by name, and after
        them any further inputs of the event."""
        names = ", ".join(field.name for field in fields(self))
        return f"({names}, ...more) => window.xlmView.{method}({{{names}}}, ...more)"


def build_page(demo: gr.Blocks, engine: Engine, room_size: int, tier: ModelTier | None = None) -> None:
    """The whole page for one loaded engine, inside the Blocks being built; the model work runs on `tier` (default:
    the engine, `room_size` of its requests waiting on its scheduler at once). Nothing is loaded or fetched here."""
    tier = tier or InProcessTier(engine, room_size)
    demo.routes.extend(ViewRoutes(tier, demo.rooms, demo.proxies).routes())
    page_state = gr.HTML(None, html_template="", js_on_load=FOLLOW_THE_RENDERER, visible="hidden", elem_id="page-state")
    gr.Markdown(f"# {title(engine)}\n{model_line(engine)}", elem_id="header")
    if engine.notice:
        gr.Markdown(f"⚠️ {engine.notice}", elem_id="notice", elem_classes=["notice"])
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            controls, buttons, room = text_column(demo, engine)
        with gr.Column(scale=2):
            live_plot(from_records=True, elem_id="candidates-plot", container=True)
            gr.HTML(elem_id="candidate-list")
            gr.HTML(elem_id="status")
    live_plot(from_records=True, elem_id="timeline-plot", container=True)
    compare_section(demo, engine, tier, page_state, room, room_size)
    build_fill_section(tier.reading, page_state, controls.prompt, buttons["blank_a_word"])
    with gr.Accordion("Inside the model: attention and attribution", open=False, elem_id="inside"):
        build_inside(engine, page_state, tier.reading)
    build_lens_section(engine, page_state, tier.reading)
    fidelity_section(tier, page_state)
    with gr.Accordion("Tokens as the model sees them", open=False) as table:
        gr.HTML(elem_id="inspector")  # filled while a person can see it
    table.expand(None, js="() => window.xlmView.table(true)", api_visibility="private", queue=False)
    table.collapse(None, js="() => window.xlmView.table(false)", api_visibility="private", queue=False)
    with gr.Accordion("Model", open=False):
        gr.Markdown(model_panel(engine), elem_id="model-panel")
    wire_view(demo, engine, tier, controls, buttons, page_state, room_size)


def text_column(demo: gr.Blocks, engine: Engine) -> tuple[Controls, dict, gr.State]:
    """The text, its language id and settings, the coloured text, the buttons; returns the controls, the buttons
    by action, and the room's code."""
    named = languages.names(languages.ordered(engine.lang2id))
    prompt = gr.Textbox(
        label="Text",
        value=DEFAULT_PROMPT,
        lines=3,
        max_lines=12,
        elem_id="prompt",
        placeholder=f"Type {named.replace(' and ', ' or ')} text; the chart follows as you type.",
    )
    with gr.Row():
        lang = gr.Radio(
            languages.choices(engine.lang2id), value=languages.default(engine.lang2id), label="Language id",
            elem_id="lang", scale=2,
        )  # fmt: skip
        top_k = gr.Slider(1, MAX_CANDIDATES, value=10, step=1, label="Candidates shown", elem_id="top-k", scale=3)
    with gr.Row(equal_height=True):
        literal = gr.Checkbox(
            False, label="Literal: <s>, </s>, <special1> … typed are plain characters, not special tokens",
            elem_id="literal-specials", scale=4,
        )  # fmt: skip
        blank_a_word = gr.Button(
            "Blank a word", size="sm", elem_id="blank-word", scale=1, min_width=110
        )  # the selected one, or the last: it becomes <special1>, and the section below fills it
    gr.HTML(elem_id="output")
    with gr.Row():
        buttons = {
            "step": gr.Button("Step →", elem_id="step", variant="primary", min_width=90),
            "continue": gr.Button("Continue", elem_id="continue", min_width=90),
            "stop": gr.Button("Stop", elem_id="stop", variant="secondary", min_width=70),  # red while one runs
            "undo": gr.Button("Undo", elem_id="undo", min_width=70),
            "reset": gr.Button("Reset", elem_id="reset", min_width=70),
        }
    gr.HTML(KEYS, elem_id="keys")
    with gr.Row():
        buttons["export"] = gr.Button("Export JSON and HTML", elem_id="export", size="sm")
        buttons["exported"] = gr.File(elem_id="export-file", show_label=False, visible=False, height=60)
        buttons["exported_view"] = gr.File(elem_id="export-html", show_label=False, visible=False, height=60)
    room, buttons["shared"] = build_sharing(demo)
    with gr.Row():
        n_tokens = gr.Slider(1, MAX_CONTINUE, value=12, step=1, label="Tokens per Continue", elem_id="n-tokens")
        continue_lang = gr.Radio(
            [("the text's", ""), *languages.choices(engine.lang2id)], value="",
            label="Chosen tokens carry the language id", elem_id="continue-lang",
        )  # fmt: skip
    with gr.Accordion("Sampling", open=False, elem_id="sampling"):
        sample = gr.Checkbox(False, label="Sample (off: always the most probable token)", elem_id="sample")
        temperature = gr.Slider(0, 2, value=1, step=0.05, label="Temperature", elem_id="temperature")
        sample_top_k = gr.Slider(0, 200, value=0, step=1, label="Top-k (0 = off)", elem_id="sample-top-k")
        top_p = gr.Slider(0.05, 1, value=1, step=0.01, label="Top-p (1 = off)", elem_id="top-p")
        seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
    buttons["blank_a_word"] = blank_a_word
    controls = Controls(prompt, lang, top_k, literal, continue_lang, n_tokens, sample, temperature, sample_top_k, top_p,
                        seed)  # fmt: skip
    return controls, buttons, room


def compare_section(
    demo: gr.Blocks, engine: Engine, tier: ModelTier, page_state: gr.HTML, room: gr.State, room_size: int
) -> None:
    """The same text under every language id, shown to the room too."""
    named = languages.names(languages.ordered(engine.lang2id))
    with gr.Accordion("Compare the language ids", open=True, elem_id="compare-section"):
        compare = gr.Button(f"Compare the {named} ids", elem_id="compare")
        plot = live_plot(elem_id="compare-plot", container=True)
        summary = gr.Markdown(elem_id="compare-summary")
    compared = with_live_figures(tier.reading(side_by_side.compare))
    compare.click(
        shown_to_room(compared, demo.rooms), [page_state, room],
        [plot, summary], concurrency_id=ROOM_GROUP, concurrency_limit=room_size, api_visibility="private",
    )  # fmt: skip


def fidelity_section(tier: ModelTier, page_state: gr.HTML) -> None:
    """The same text run the way transformers' defaults would, beside the faithful run."""
    with gr.Accordion("Fidelity: the same text through transformers' defaults", open=False):
        gr.Markdown(
            "transformers runs this checkpoint with bidirectional attention, a `<s>` start and a trailing "
            "`</s>`, lowercased text and English tokenizer rules. Here is what that does to the prediction."
        )
        run = gr.Button("Run both ways", elem_id="fidelity")
        with gr.Row():
            faithful = live_plot(elem_id="faithful-plot", container=True)
            defaults = live_plot(elem_id="defaults-plot", container=True)
        summary = gr.Markdown(elem_id="fidelity-summary")
        widget = live_plot(elem_id="widget-plot", container=True)  # when the text holds one <special1>
    run.click(
        with_live_figures(tier.reading(side_by_side.fidelity)),
        page_state,
        [faithful, defaults, summary, widget],
        concurrency_id=MODEL_GROUP,
        api_visibility="private",
    )


def wire_view(
    demo: gr.Blocks,
    engine: Engine,
    tier: ModelTier,
    controls: Controls,
    buttons: dict,
    page_state: gr.HTML,
    room_size: int,
) -> None:
    """The renderer told of every change, in the browser; the export; the view restored from the page's URL."""
    browser_only = {"api_visibility": "private", "show_progress": "hidden", "queue": False}
    values = controls.values()
    gr.on([control.change for control in values], None, values, None, js=controls.told("controlled"), **browser_only)
    for action in ("step", "undo", "reset", "continue"):
        buttons[action].click(None, js=f"() => window.xlmView.act('{action}')", **browser_only)
    buttons["stop"].click(None, js="() => window.xlmView.stop()", **browser_only)
    buttons["shared"].then(None, values, None, js=controls.told("controlled"), **browser_only)  # the room sees it now
    exported_by_tier = tier.reading(export.exported)

    def exported(fields: dict | None) -> tuple:
        """The page state's files: computed where the model runs, written here."""
        return export.files(*exported_by_tier(fields))

    buttons["export"].click(
        exported, page_state, [buttons["exported"], buttons["exported_view"]],
        concurrency_id=ROOM_GROUP, concurrency_limit=room_size, api_visibility="private",
    )  # fmt: skip

    def restore_from_url(request: gr.Request) -> tuple:  # a plain function: Gradio sees the Request hint
        """The controls and the chosen tokens a share link restores; each part of it left out, told."""
        if request.query_params.get("follow"):  # a follower's page: the room pushes what it shows
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), None
        state, told = read_share_link(tier.facts, request.query_params)
        for sentence in told:
            gr.Warning(sentence)
        return state.prompt, state.lang, state.top_k, state.literal, state.fields()

    restored = gr.JSON(visible=False)
    demo.load(
        restore_from_url,
        None,
        [controls.prompt, controls.lang, controls.top_k, controls.literal, restored],
        show_progress="hidden",
        api_visibility="private",
    ).then(None, [*values, restored], None, js=controls.told("started"), **browser_only)
