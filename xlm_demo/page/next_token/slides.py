"""The current view as one HTML file for slides: the coloured text and the charts, plotly.js inside, opens offline."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

import gradio as gr

from ...engine import Engine
from ...model import languages
from ..state import PageSettings
from .events import refresh

PAGE_CSS = Path(__file__).resolve().parents[3] / "assets" / "page.css"  # the token colours, as on the page
CHART_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "svg"}}


def view_html(settings: PageSettings, state: dict, *, engine: Engine) -> str:
    """The page's view of the text as a standalone document: the first chart carries plotly.js."""
    chart, _, coloured, timeline, *_ = refresh(settings, state, inspector_open=False, engine=engine, steps_changed=True)
    figures = [figure for figure in (chart, timeline) if figure is not None]
    drawn = [
        figure.to_html(full_html=False, include_plotlyjs=index == 0, config=CHART_CONFIG)
        for index, figure in enumerate(figures)
    ]
    title = f"{html.escape(settings.prompt[:60])} · {engine.source}"
    return (
        f'<!doctype html>\n<html lang="{html.escape(settings.lang)}"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>body {{ font-family: system-ui, sans-serif; margin: 2rem; }}\n{PAGE_CSS.read_text(encoding='utf-8')}"
        f"</style></head><body><h1>{html.escape(settings.prompt)}</h1><p>{html.escape(engine.source)} · "
        f"{languages.name(settings.lang)} language id</p>{coloured}{''.join(drawn)}</body></html>\n"
    )


def export_html(settings: PageSettings, state: dict, *, engine: Engine) -> dict:
    """The view's HTML file, offered beside the JSON export."""
    with tempfile.NamedTemporaryFile("w", suffix=".html", prefix="xlm-view-", delete=False, encoding="utf-8") as file:
        file.write(view_html(settings, state, engine=engine))
    return gr.update(value=file.name, visible=True)
