"""The page's layout and event wiring: the next-token section, and where the other sections go; the work is done
by the sections' events and charts."""

from __future__ import annotations

import inspect
from functools import partial

import gradio as gr

from ..engine import Engine
from ..model import languages
from .fill.layout import build_fill_section
from .follow.layout import broadcast, build_sharing, compared
from .guards import MODEL_GROUP, ROOM_GROUP
from .header import model_line, model_panel
from .inside.layout import build_inside
from .lens.layout import build_lens_section
from .live_plot import live_plot, with_live_figures
from .next_token import events, side_by_side, slides
from .next_token import view as shown
from .next_token.token_stream import token_stream
from .state import DEFAULT_PROMPT, PAGE_CONTROLS, PageSettings, from_url, new_state, with_literal


def title(engine: Engine) -> str:
    """The page's title, naming the checkpoint's languages."""
    return f"XLM {'/'.join(map(languages.name, languages.ordered(engine.lang2id)))} explorer"


def build_page(demo: gr.Blocks, engine: Engine, room_size: int) -> None:
    """The whole page for one loaded engine, inside the Blocks being built, `room_size` of its events waiting on
    the engine's scheduler at once; nothing is loaded or fetched here."""

    def bind(callback):
        """A callback given the engine, its figures handed to the live plots."""
        return with_live_figures(partial(callback, engine=engine))

    def on_page(callback):
        """A page event: the controls' values read into PageSettings, then the state, whether the inspector is
        open, and the event's own inputs."""

        wants_inspector = "inspector_open" in inspect.signature(callback).parameters

        def read(values: tuple) -> tuple:
            settings = PageSettings.read(*values[:PAGE_CONTROLS])
            state, inspector_open, *rest = values[PAGE_CONTROLS:]
            extra = {"inspector_open": inspector_open} if wants_inspector else {}
            return (settings, state, *rest), {**extra, "engine": engine}

        if inspect.isgeneratorfunction(callback):

            def streamed(*values):
                args, kwargs = read(values)
                yield from callback(*args, **kwargs)

            return with_live_figures(streamed)

        def run(*values):
            args, kwargs = read(values)
            return callback(*args, **kwargs)

        return with_live_figures(run)

    named = languages.names(languages.ordered(engine.lang2id))
    state = gr.State(new_state())
    inspector_open = gr.State(False)  # the table is built only while a person can see it
    gr.Markdown(f"# {title(engine)}\n{model_line(engine)}", elem_id="header")
    if engine.notice:
        gr.Markdown(f"⚠️ {engine.notice}", elem_id="notice", elem_classes=["notice"])
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
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
                    languages.choices(engine.lang2id),
                    value=languages.default(engine.lang2id),
                    label="Language id",
                    elem_id="lang",
                    scale=2,
                )
                top_k = gr.Slider(5, 50, value=10, step=1, label="Candidates shown", elem_id="top-k", scale=3)
            with gr.Row(equal_height=True):
                literal = gr.Checkbox(
                    False,
                    label="Literal: <s>, </s>, <special1> … typed are plain characters, not special tokens",
                    elem_id="literal-specials",
                    scale=4,
                )
                blank_a_word = gr.Button(
                    "Blank a word", size="sm", elem_id="blank-word", scale=1, min_width=110
                )  # the selected one, or the last: it becomes <special1>, and the section below fills it
            output = gr.HTML(elem_id="output")
            stream = token_stream()  # Continue's tokens, appended to the output's text as they come
            with gr.Row():
                step = gr.Button("Step →", elem_id="step", variant="primary", min_width=90)
                go_on = gr.Button("Continue", elem_id="continue", min_width=90)
                stop = gr.Button("Stop", elem_id="stop", variant="stop", min_width=70)
                undo = gr.Button("Undo", elem_id="undo", min_width=70)
                reset = gr.Button("Reset", elem_id="reset", min_width=70)
            with gr.Row():
                export = gr.Button("Export JSON and HTML", elem_id="export", size="sm")
                exported = gr.File(elem_id="export-file", show_label=False, visible=False, height=60)
                exported_view = gr.File(elem_id="export-html", show_label=False, visible=False, height=60)
            room, shared = build_sharing(demo)
            with gr.Row():
                n_tokens = gr.Slider(1, 64, value=12, step=1, label="Tokens per Continue", elem_id="n-tokens")
                continue_lang = gr.Radio(
                    [("the text's", ""), *languages.choices(engine.lang2id)],
                    value="",
                    label="Chosen tokens carry the language id",
                    elem_id="continue-lang",
                )
            with gr.Accordion("Sampling", open=False, elem_id="sampling"):
                sample = gr.Checkbox(False, label="Sample (off: always the most probable token)", elem_id="sample")
                temperature = gr.Slider(0, 2, value=1, step=0.05, label="Temperature", elem_id="temperature")
                sample_top_k = gr.Slider(0, 200, value=0, step=1, label="Top-k (0 = off)", elem_id="sample-top-k")
                top_p = gr.Slider(0.05, 1, value=1, step=0.01, label="Top-p (1 = off)", elem_id="top-p")
                seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
        with gr.Column(scale=2):
            candidates_plot = live_plot(elem_id="candidates-plot", container=True)
            candidate_list = gr.Radio([], label="Pick the next token", elem_id="candidate-list")
            status = gr.Markdown(elem_id="status")
    timeline = live_plot(elem_id="timeline-plot", container=True)
    with gr.Accordion("Compare the language ids", open=True, elem_id="compare-section"):
        compare = gr.Button(f"Compare the {named} ids", elem_id="compare")
        compare_plot = live_plot(elem_id="compare-plot", container=True)
        compare_summary = gr.Markdown(elem_id="compare-summary")
    build_fill_section(engine, prompt, literal, top_k, blank_a_word)
    with gr.Accordion("Inside the model: attention and attribution", open=False, elem_id="inside"):
        build_inside(engine, prompt, lang, state)
    build_lens_section(engine, prompt, lang, state, changed=status)
    with gr.Accordion("Fidelity: the same text through transformers' defaults", open=False):
        gr.Markdown(
            "transformers runs this checkpoint with bidirectional attention, a `<s>` start and a trailing "
            "`</s>`, lowercased text and English tokenizer rules. Here is what that does to the prediction."
        )
        fidelity_button = gr.Button("Run both ways", elem_id="fidelity")
        with gr.Row():
            faithful_plot = live_plot(elem_id="faithful-plot", container=True)
            defaults_plot = live_plot(elem_id="defaults-plot", container=True)
        fidelity_summary = gr.Markdown(elem_id="fidelity-summary")
        widget_plot = live_plot(elem_id="widget-plot", container=True)  # when the text holds one <special1>
    with gr.Accordion("Tokens as the model sees them", open=False) as inspector_section:
        inspector = gr.Dataframe(headers=shown.INSPECTOR_HEADERS, elem_id="inspector", interactive=False, wrap=True)
    with gr.Accordion("Model", open=False):
        gr.Markdown(model_panel(engine), elem_id="model-panel")

    controls = [prompt, lang, top_k, sample, temperature, sample_top_k, top_p, seed, continue_lang]
    settings = [*controls, state, inspector_open]
    view = [candidates_plot, candidate_list, output, timeline, inspector, status, state]

    def shown_to_room(callback):
        """A page event that shows a view, its inputs ending with the room's code: the room is shown it too."""
        return broadcast(on_page(callback), demo.rooms)

    def loaded(settings: PageSettings, state: dict, *, inspector_open: bool, engine: Engine) -> tuple:
        """The first view; a follower's page shows the room's instead, pushed to it."""
        if state.get("following"):
            return tuple(gr.skip() for _ in view)
        return events.refresh(settings, state, inspector_open=inspector_open, engine=engine)

    # The page's own events are not part of the public API. Those that run sessions join the scheduler's batches.
    page_event = {"concurrency_id": ROOM_GROUP, "concurrency_limit": room_size, "api_visibility": "private"}
    model_event = {"concurrency_id": MODEL_GROUP, "api_visibility": "private"}
    for control in controls:  # typed or pasted
        control.change(
            shown_to_room(events.refresh),
            [*settings, room],
            view,
            trigger_mode="always_last",
            show_progress="hidden",
            **page_event,
        )
    for button, callback in ((step, events.step), (undo, events.undo), (reset, events.reset)):
        button.click(shown_to_room(callback), [*settings, room], view, show_progress="hidden", **page_event)
    candidate_list.input(
        shown_to_room(events.pick), [*settings, candidate_list, room], view, show_progress="hidden", **page_event
    )
    streaming = go_on.click(
        shown_to_room(events.continue_),
        [*settings, n_tokens, room],
        [*view, stream],
        show_progress="hidden",
        **page_event,
    )
    inspector_section.expand(lambda: True, None, inspector_open, api_visibility="private").then(
        shown_to_room(events.refresh), [*settings, room], view, show_progress="hidden", **page_event
    )
    shared.then(shown_to_room(events.refresh), [*settings, room], view, show_progress="hidden", **page_event)
    inspector_section.collapse(lambda: False, None, inspector_open, api_visibility="private")
    stop.click(None, cancels=[streaming], api_visibility="private").then(
        shown_to_room(events.settle), [*settings, room], view, show_progress="hidden", **page_event
    )
    compare.click(
        broadcast(bind(side_by_side.compare), demo.rooms, changes=compared),
        [prompt, top_k, state, room],
        [compare_plot, compare_summary],
        **page_event,
    )
    export.click(on_page(events.export), settings, exported, **page_event).then(
        on_page(slides.export_html), settings, exported_view, **page_event
    )
    literal.change(with_literal, [literal, state], state, show_progress="hidden", api_visibility="private").then(
        shown_to_room(events.refresh), [*settings, room], view, show_progress="hidden", **page_event
    )
    fidelity_button.click(
        bind(side_by_side.fidelity),
        [prompt, lang, top_k, state],
        [faithful_plot, defaults_plot, fidelity_summary, widget_plot],
        **model_event,
    )

    def restore_from_url(request: gr.Request) -> tuple:  # a plain function: Gradio sees the Request hint
        if request.query_params.get("follow"):  # a follower's page: the room pushes what it shows
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), {**new_state(), "following": True}
        return from_url(request, engine=engine)

    demo.load(
        restore_from_url,
        None,
        [prompt, lang, top_k, literal, state],
        show_progress="hidden",
        api_visibility="private",
    ).then(on_page(loaded), settings, view, show_progress="hidden", **page_event)
