"""The page's layout and event wiring: the next-token section, and where the other sections go. Typing, Step, pick,
Undo, Reset, Continue and Stop go to the view route beside Gradio's queue (next_token/routes.py) through the
renderer (assets/view.js); Gradio's events here only tell the renderer, in the browser. The sections that take
seconds stay queued Gradio events."""

from __future__ import annotations

from dataclasses import dataclass

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
from .state import DEFAULT_PROMPT, PageSettings, from_url, new_state
from .tier import InProcessTier, ModelTier

# What the renderer is told of the controls, in the order of Controls.values(): it sends them with every request.
CONTROLLED = """(prompt, lang, top_k, literal, sample, temperature, sample_top_k, top_p, seed, continue_lang, n_tokens,
  ...restored) => {
  const controls = {prompt, lang, top_k, literal, continue_lang, n_tokens,
    sampling: {sample, temperature, top_k: sample_top_k, top_p, seed}};
  if (new URLSearchParams(location.search).get('follow')) return;  // a follower's page shows the room's views
  if (restored.length) window.xlmView.started(controls, restored[0]);
  else window.xlmView.controlled(controls);
}"""

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
    """The controls every view depends on."""

    prompt: gr.Textbox
    lang: gr.Radio
    top_k: gr.Slider
    literal: gr.Checkbox
    blank_a_word: gr.Button
    sample: gr.Checkbox
    temperature: gr.Slider
    sample_top_k: gr.Slider
    top_p: gr.Slider
    seed: gr.Number
    continue_lang: gr.Radio
    n_tokens: gr.Slider

    def values(self) -> list[gr.Component]:
        """The controls in the order CONTROLLED reads them."""
        return [self.prompt, self.lang, self.top_k, self.literal, self.sample, self.temperature, self.sample_top_k,
                self.top_p, self.seed, self.continue_lang, self.n_tokens]  # fmt: skip

    def settings(self) -> list[gr.Component]:
        """The controls PageSettings.read takes, in its order."""
        return [self.prompt, self.lang, self.top_k, self.sample, self.temperature, self.sample_top_k, self.top_p,
                self.seed, self.continue_lang]  # fmt: skip


def build_page(demo: gr.Blocks, engine: Engine, room_size: int, tier: ModelTier | None = None) -> None:
    """The whole page for one loaded engine, inside the Blocks being built; the model work runs on `tier` (default:
    the engine, `room_size` of its requests waiting on its scheduler at once). Nothing is loaded or fetched here."""
    tier = tier or InProcessTier(engine, room_size)
    demo.routes.extend(ViewRoutes(tier, demo.rooms, demo.proxies).routes())
    # The text and its chosen tokens as the renderer last showed them, for the sections' events to read; the
    # renderer sets it through this button's browser-only event.
    session = gr.JSON(visible=False)
    view_changed = gr.Button("view changed", elem_id="view-changed", elem_classes=["unseen"])
    view_changed.click(None, None, session, js="() => window.xlmView.session()", api_visibility="private")
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
    compare_section(demo, engine, tier, controls, session, room, room_size)
    build_fill_section(tier.reading, controls.prompt, controls.literal, controls.top_k, controls.blank_a_word)
    with gr.Accordion("Inside the model: attention and attribution", open=False, elem_id="inside"):
        build_inside(engine, controls.prompt, controls.lang, session, tier.reading)
    build_lens_section(engine, controls.prompt, controls.lang, session, changed=session, reading=tier.reading)
    fidelity_section(tier, controls, session)
    with gr.Accordion("Tokens as the model sees them", open=False) as table:
        gr.HTML(elem_id="inspector")  # filled while a person can see it
    table.expand(None, js="() => window.xlmView.table(true)", api_visibility="private", queue=False)
    table.collapse(None, js="() => window.xlmView.table(false)", api_visibility="private", queue=False)
    with gr.Accordion("Model", open=False):
        gr.Markdown(model_panel(engine), elem_id="model-panel")
    wire_view(demo, engine, tier, controls, buttons, session, room_size)


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
        top_k = gr.Slider(5, 50, value=10, step=1, label="Candidates shown", elem_id="top-k", scale=3)
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
        n_tokens = gr.Slider(1, 64, value=12, step=1, label="Tokens per Continue", elem_id="n-tokens")
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
    controls = Controls(prompt, lang, top_k, literal, blank_a_word, sample, temperature, sample_top_k, top_p, seed,
                        continue_lang, n_tokens)  # fmt: skip
    return controls, buttons, room


def compare_section(
    demo: gr.Blocks,
    engine: Engine,
    tier: ModelTier,
    controls: Controls,
    session: gr.JSON,
    room: gr.State,
    room_size: int,
) -> None:
    """The same text under every language id, shown to the room too."""
    named = languages.names(languages.ordered(engine.lang2id))
    with gr.Accordion("Compare the language ids", open=True, elem_id="compare-section"):
        compare = gr.Button(f"Compare the {named} ids", elem_id="compare")
        plot = live_plot(elem_id="compare-plot", container=True)
        summary = gr.Markdown(elem_id="compare-summary")
    compared = with_live_figures(tier.reading(side_by_side.compare))
    compare.click(
        shown_to_room(compared, demo.rooms), [controls.prompt, controls.top_k, session, room],
        [plot, summary], concurrency_id=ROOM_GROUP, concurrency_limit=room_size, api_visibility="private",
    )  # fmt: skip


def fidelity_section(tier: ModelTier, controls: Controls, session: gr.JSON) -> None:
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
        [controls.prompt, controls.lang, controls.top_k, session],
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
    session: gr.JSON,
    room_size: int,
) -> None:
    """The renderer told of every change, in the browser; the export; the view restored from the page's URL."""
    browser_only = {"api_visibility": "private", "show_progress": "hidden", "queue": False}
    values = controls.values()
    gr.on([control.change for control in values], None, values, None, js=CONTROLLED, **browser_only)
    for action in ("step", "undo", "reset", "continue"):
        buttons[action].click(None, js=f"() => window.xlmView.act('{action}')", **browser_only)
    buttons["stop"].click(None, js="() => window.xlmView.stop()", **browser_only)
    buttons["shared"].then(None, values, None, js=CONTROLLED, **browser_only)  # the room is shown the view now

    exported_by_tier = tier.reading(export.exported)

    def exported(*values):
        *settings, state = values
        return export.files(*exported_by_tier(PageSettings.read(*settings), state or new_state(settings[0])))

    buttons["export"].click(
        exported, [*controls.settings(), session], [buttons["exported"], buttons["exported_view"]],
        concurrency_id=ROOM_GROUP, concurrency_limit=room_size, api_visibility="private",
    )  # fmt: skip

    def restore_from_url(request: gr.Request) -> tuple:  # a plain function: Gradio sees the Request hint
        if request.query_params.get("follow"):  # a follower's page: the room pushes what it shows
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), None
        return from_url(request, engine=engine)

    restored = gr.JSON(visible=False)
    demo.load(
        restore_from_url,
        None,
        [controls.prompt, controls.lang, controls.top_k, controls.literal, restored],
        show_progress="hidden",
        api_visibility="private",
    ).then(None, [*values, restored], None, js=CONTROLLED, **browser_only)
