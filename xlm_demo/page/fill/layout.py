"""The page's "Fill the blank" section, shown while the text holds a blank (<special1>): its layout and wiring."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from ...engine.fill import MASK
from ..guards import MODEL_GROUP
from ..live_plot import live_plot, with_live_figures
from . import events

HOW_TO_READ = (
    f"Each candidate is put in the blank (`{MASK}`) and the model scores the **whole** text with it there: "
    "log p(candidate | left) + log p(right | left, candidate), every token after the start token. Bars: each "
    "candidate's share of the probability of the texts listed; outlines: its share by the left context alone, "
    "before the words after the blank are read. Beside them, the left context's own next tokens. The candidates "
    "are the left context's most probable next tokens, each made a whole word, and any words of your own. How to "
    "read it and what it cannot tell: `docs/fill.md`."
)

# In the browser, no server call: whether the page state's text holds a blank the section can fill.
HAS_BLANK = f"(state) => !!state && !state.literal && (state.prompt || '').includes('{MASK}')"
# The selected part of the text, or else its last word, becomes the blank (nothing changes if one is there already
# and nothing is selected).
BLANK_A_WORD = f"""(text) => {{
  const box = document.querySelector('#prompt textarea');
  const [start, end] = box && box.value === text ? [box.selectionStart, box.selectionEnd] : [0, 0];
  if (end > start) return text.slice(0, start) + '{MASK}' + text.slice(end);
  if (text.includes('{MASK}')) return text;
  const words = [...text.matchAll(/<special\\d>|[\\p{{L}}\\p{{N}}]+/gu)].filter((match) => match[0][0] !== '<');
  const last = words[words.length - 1];
  return last ? text.slice(0, last.index) + '{MASK}' + text.slice(last.index + last[0].length) : text;
}}"""


def build_fill_section(
    reading: Callable[[Callable], Callable], page_state: gr.HTML, prompt: gr.Textbox, blank_a_word: gr.Button
) -> None:
    """The section for the page state's text, hidden until it holds a blank; `blank_a_word` makes one in the text
    box `prompt` and fills it; the model work runs through `reading` (the model tier's)."""
    with gr.Accordion("Fill the blank", open=True, visible=False, elem_id="fill-section") as section:
        gr.Markdown(HOW_TO_READ)
        with gr.Row(equal_height=True):
            words = gr.Textbox(
                label="Your own words, comma-separated: always listed, ranked among the others",
                max_lines=1,
                elem_id="fill-words",
                scale=4,
            )
            fill = gr.Button("Fill the blank", variant="primary", elem_id="fill", scale=1)
        plot = live_plot(elem_id="fill-plot", container=True)
        summary = gr.Markdown(elem_id="fill-summary")
    has_blank = gr.Checkbox(False, visible=False)  # kept in the browser, set as the text changes

    private = {"api_visibility": "private", "show_progress": "hidden"}
    page_state.change(None, page_state, has_blank, js=HAS_BLANK, **private)
    has_blank.change(lambda shown: gr.update(visible=shown), has_blank, section, queue=False, **private)
    run = with_live_figures(reading(events.fill_view))
    inputs, outputs = [page_state, words], [plot, summary]
    gr.on([fill.click, words.submit], run, inputs, outputs, concurrency_id=MODEL_GROUP, api_visibility="private")
    blanked = with_live_figures(reading(events.blanked_view))
    blank_a_word.click(None, prompt, prompt, js=BLANK_A_WORD, **private).then(
        blanked, [*inputs, prompt], outputs, concurrency_id=MODEL_GROUP, api_visibility="private"
    )
