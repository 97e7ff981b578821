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
from ..live_plot import PLOTLY_JS
from ..renderer import renderer_script
from ..state import PageSettings, current, for_prompt
from .record import ViewRecord, view_record

CHART = '<div id="{}" class="block live-plot-block"><div class="live-plot"></div></div>'  # as the page's components
PAGE_CSS = Path(__file__).resolve().parents[3] / "assets" / "page.css"  # the token colours, as on the page


def exploration(settings: PageSettings, session: dict, *, engine: Engine) -> dict:
    """Settings, ids, every chosen token with the distribution it was chosen from, and the next distribution."""
    session = for_prompt(session, settings.prompt)
    encoded, literal = current(engine, settings.prompt, settings.lang, session), session.get("literal", False)
    analysis = engine.analyse(encoded, settings.top_k, settings.sampling)
    return {
        "model": engine.source,
        "prompt": settings.prompt,
        "lang": settings.lang,
        "settings": {
            "candidates_shown": settings.top_k,
            "sample": settings.sampling != GREEDY,
            "sampling": asdict(settings.sampling),
            "literal_specials": literal,
        },
        "input_ids": encoded.input_ids,
        "langs": encoded.position_langs,
        "text": engine.decode(encoded.input_ids, settings.lang, literal=literal),
        "steps": chosen_steps(engine, settings, encoded, analysis.scores, len(session["appended"])),
        "next": predict_payload(analysis.next_token),
    }


def chosen_steps(
    engine: Engine, settings: PageSettings, encoded: Encoded, scores: list[TokenScore], n_chosen: int
) -> list[dict]:
    """Each chosen token and the distribution it was chosen from (the prefix cache holds every prefix)."""
    steps, langs = [], encoded.position_langs
    for position in range(len(encoded.input_ids) - n_chosen, len(encoded.input_ids)):
        before = Encoded(encoded.input_ids[:position], encoded.lang, encoded.truncated, tuple(langs[:position]))
        distribution = engine.analyse(before, settings.top_k, settings.sampling).next_token
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


def exported(settings: PageSettings, session: dict, *, engine: Engine) -> tuple[dict, ViewRecord]:
    """The exploration and the view's record, which `files` writes."""
    session = for_prompt(session, settings.prompt)
    return exploration(settings, session, engine=engine), view_record(engine, settings, session, seq=0)


def files(explored: dict, record: ViewRecord) -> tuple:
    """The exploration's JSON file and the view's HTML file, offered for download."""
    folder = Path(tempfile.mkdtemp(prefix="xlm-export-"))  # a folder each: the files keep their plain names
    data, page = folder / "xlm-exploration.json", folder / "xlm-view.html"
    data.write_text(json.dumps(explored, ensure_ascii=False, indent=1) + "\n")
    page.write_text(view_html(record, explored["model"]), encoding="utf-8")
    return gr.update(value=str(data), visible=True), gr.update(value=str(page), visible=True)
