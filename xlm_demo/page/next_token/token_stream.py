"""Continue's tokens sent to the page as they come: each token's coloured span alone, appended to the text in the
browser at most once a frame, instead of the whole coloured text again (at 300 words, re-rendering it and the chart
took the browser 40-70 ms a view, on the same cores as the decoding)."""

from __future__ import annotations

import json

import gradio as gr

APPEND = """
let frame = 0;
const draw = () => {
  frame = 0;
  const text = document.querySelector('#output .tokens');
  if (!props.value || !text) return;  // cleared when the stream ends: the whole view has come
  const tokens = JSON.parse(props.value);
  const shown = text.querySelectorAll('.tok').length + 1;  // positions on screen, the unshown start token's too
  if (shown < tokens.from) return;  // not the text this continuation began from
  const missing = tokens.spans.slice(shown - tokens.from);
  if (missing.length) text.insertAdjacentHTML('beforeend', missing.join(''));
  const status = document.querySelector('#status');  // its count of positions follows the text
  const walker = status && document.createTreeWalker(status, NodeFilter.SHOW_TEXT);
  for (let node; walker && (node = walker.nextNode());)
    if (/\\d+ positions/.test(node.nodeValue)) {
      node.nodeValue = node.nodeValue.replace(/\\d+ positions/, `${tokens.from + tokens.spans.length} positions`);
      break;
    }
};
// Each value holds every token of the continuation so far, so values the page skips lose nothing; the text takes
// what it lacks, at most once a frame.
watch('value', () => { if (!frame) frame = requestAnimationFrame(draw); });
"""


def token_stream() -> gr.HTML:
    """The component: nothing shown itself (the page's CSS hides it); its values are the streamed tokens."""
    return gr.HTML("", html_template="<div></div>", js_on_load=APPEND, elem_id="token-stream", container=False)


def streamed_tokens(spans: list[str], start: int) -> str:
    """The stream's value: the spans of every token continued so far, the first at position `start`."""
    return json.dumps({"from": start, "spans": spans})


NO_TOKENS = ""  # the stream's value between continuations
