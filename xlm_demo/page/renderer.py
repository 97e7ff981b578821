"""The renderer (assets/view.js) as the page's head and the exported view load it: the charts' look first, then
the script, inline, so that it is defined before Gradio draws the page and needs nothing fetched."""

from __future__ import annotations

import json
from pathlib import Path

from .look import BLUE, FREE_LABELS, LOOK, ORANGE, PERCENT_STEPS, VALUE_LABEL_PX

VIEW_JS = Path(__file__).resolve().parents[2] / "assets" / "view.js"


def renderer_script() -> str:
    """The look and the renderer, as two inline scripts."""
    look = {
        "layout": LOOK,
        "free_labels": FREE_LABELS,
        "blue": BLUE,
        "orange": ORANGE,
        "percent_steps": PERCENT_STEPS,
        "value_label_px": VALUE_LABEL_PX,
    }
    return (
        f"<script>window.xlmLook = {json.dumps(look)};</script>\n<script>{VIEW_JS.read_text(encoding='utf-8')}</script>"
    )
