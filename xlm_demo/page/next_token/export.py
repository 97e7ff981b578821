"""The exploration as files: the JSON of every step and the next distribution, and the view as one HTML page that
the renderer draws from its record, plotly.js inside, opening offline."""

from __future__ import annotations

import html
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import gradio as gr

from ...engine import Encoded, Engine, Step, TokenScore
from ...engine.sampling import GREEDY
from ...model import languages
from ...payloads import predict_payload, step_payload
from ..guards import user_errors
from ..live_plot import PLOTLY_JS
from ..renderer import renderer_script
from ..requests import ModelFacts, read_state
from ..state import PageState, fed_sequence
from .record import ViewRecord, view_record

CHART = '<div id="{}" class="block live-plot-block"><div class="live-plot"></div></div>'  # as the page's components
PAGE_CSS = Path(__file__).resolve().parents[3] / "assets" / "page.css"  # the token colours, as on the page


def exploration(state: PageState, *, engine: Engine) -> dict:
    """Settings, ids, every chosen token with the distribution it was chosen from, and the next distribution."""
    fed = fed_sequence(engine, state)
    analysis = engine.analyse(fed, state.top_k, state.sampling)
    return {
        "model": engine.source,
        "prompt": state.prompt,
        "lang": state.lang,
        "settings": {
            "candidates_shown": state.top_k,
            "sample": state.sampling != GREEDY,
            "sampling": asdict(state.sampling),
            "literal_specials": state.literal,
        },
        "input_ids": fed.input_ids,
        "langs": fed.position_langs,
        "text": engine.decode(fed.input_ids, state.lang, literal=state.literal),
        "steps": chosen_steps(engine, state, fed, analysis.scores),
        "next": predict_payload(analysis.next_token),
    }


def chosen_steps(engine: Engine, state: PageState, fed: Encoded, scores: list[TokenScore]) -> list[dict]:
    """Each chosen token and the distribution it was chosen from (the prefix cache holds every prefix)."""
    steps, langs = [], fed.position_langs
    for position in range(len(fed.input_ids) - len(state.chosen), len(fed.input_ids)):
        before = Encoded(fed.input_ids[:position], fed.lang, fed.truncated, tuple(langs[:position]))
        distribution = engine.analyse(before, state.top_k, state.sampling).next_token
        score = scores[position]
        steps.append(step_payload(Step(score.id, score.token, score.prob, score.logprob, score.rank, distribution)))
    return steps


def view_html(record: ViewRecord, source: str) -> str:
    """The record as a standalone document, drawn by the page's own renderer."""
    title = f"{html.escape(record.prompt[:60])} · {html.escape(source)}"
    plotly_js = PLOTLY_JS.read_text(encoding="utf-8")
    return (
        f'<!doctype html>\n<html lang="{html.escape(record.lang)}"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>body {{ font-family: system-ui, sans-serif; margin: 2rem; }}\n{PAGE_CSS.read_text(encoding='utf-8')}"
        f"</style><script>{plotly_js}</script>{renderer_script()}</head><body>"
        f"<h1>{html.escape(record.prompt)}</h1><p>{html.escape(source)} · {languages.name(record.lang)} language id</p>"
        f'<div id="output"></div>{CHART.format("candidates-plot")}{CHART.format("timeline-plot")}'
        f"<script>window.xlmView.show({record.to_json().decode()});</script></body></html>\n"
    )


def exported(fields: dict, *, engine: Engine) -> tuple[dict, ViewRecord]:
    """The page state's exploration and its view's record, which `files` writes."""
    with user_errors("Export"):
        state = read_state(ModelFacts.of(engine), fields)
        return exploration(state, engine=engine), view_record(engine, state, seq=0)


def files(explored: dict, record: ViewRecord) -> tuple:
    """The exploration's JSON file and the view's HTML file, offered for download."""
    folder = Path(tempfile.mkdtemp(prefix="xlm-export-"))  # a folder each: the files keep their plain names
    data, page = folder / "xlm-exploration.json", folder / "xlm-view.html"
    data.write_text(json.dumps(explored, ensure_ascii=False, indent=1) + "\n")
    page.write_text(view_html(record, explored["model"]), encoding="utf-8")
    return gr.update(value=str(data), visible=True), gr.update(value=str(page), visible=True)
