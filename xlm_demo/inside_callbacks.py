"""What the 'Inside the model' section's events do, as plain functions of the inputs and the engine."""

from __future__ import annotations

import html

import gradio as gr

from . import inside_charts
from .attention import attention_by_lang
from .attribution import PARTS, attribute, token_id
from .callbacks import current, for_prompt, token_html, user_errors
from .charts import LANG_NAMES
from .engine import Engine
from .payloads import attribution_payload

METHOD_NAMES = {"grad_x_input": "gradient × input", "integrated_gradients": "integrated gradients"}
COLOURINGS = [("rank given the prefix", "rank"), ("attribution", "score"), ("language id's share", "language_part")]
SUPPORT, AGAINST = (37, 99, 235), (234, 88, 12)  # blue raises the explained quantity, orange lowers it


def new_inside() -> dict:
    """Nothing computed yet: the attention map and the attribution last shown."""
    return {"attention": None, "attribution": None, "rank_html": "", "n_typed": 0}


def attention_view(prompt, lang, state, position, difference, layer, head, inside, *, engine: Engine) -> tuple:
    """The layer × head chart for a query position (empty: the last), or English − German, and one head's text."""
    state = for_prompt(state, prompt)
    encoded = current(engine, prompt, lang, state)
    with user_errors():
        query = query_position(position)
        if difference and not {"en", "de"} <= set(engine.lang2id):
            raise ValueError("the difference needs both an English and a German language id")
        maps = attention_by_lang(engine, encoded, query, ["en", "de"] if difference else [encoded.lang])
    first = next(iter(maps.values()))
    weights = maps["en"].weights - maps["de"].weights if difference else first.weights  # (L, H, position + 1)
    label = f"{LANG_NAMES['en']} − {LANG_NAMES['de']}" if difference else None
    tokens = [engine.tokenizer.display(i) for i in first.input_ids[: first.position + 1]]
    # A tensor, not nested lists: Gradio keeps each session's state, and 48 rows of 512 floats add up.
    shown = {"tokens": tokens, "position": first.position, "weights": weights, "difference": label}
    inside = {**inside, "attention": shown}
    layer, head = int(layer or len(weights)), int(head or 1)
    figure = inside_charts.attention_figure(weights.tolist(), tokens, first.position, label)
    return figure, layer, head, head_view(inside, layer, head), inside


def query_position(text: str | None) -> int | None:
    """The typed position: None when empty (the last), else a whole number."""
    text = (text or "").strip()
    if not text:
        return None
    if not text.lstrip("-").isdigit():
        raise ValueError(f"position must be a whole number (empty: the last), got {text!r}")
    return int(text)


def head_view(inside: dict, layer, head) -> str:
    """One head's weights over the text up to the query, as the token spans' shading."""
    shown = inside["attention"]
    if not shown or not layer or not head:
        return ""
    weights = shown["weights"][int(layer) - 1, int(head) - 1].tolist()
    signed = shown["difference"] is not None
    largest = max(max(abs(w) for w in weights), 1e-9)
    spans = []
    for i, (token, weight) in enumerate(zip(shown["tokens"], weights, strict=True)):
        colour = SUPPORT if weight >= 0 or not signed else AGAINST
        tip = f"position {i} · {'difference' if signed else 'weight'} {weight:+.3f}"
        spans.append(span(token, abs(weight) / largest, colour, tip, "tok query" if i == shown["position"] else "tok"))
    what = f"{shown['difference']} weights (blue: more under the first id, orange: more under the second)"
    caption = (
        f"<p>Layer {int(layer)}, head {int(head)}: its {what if signed else 'weights'} from position "
        f"{shown['position']} (outlined) over every position up to it, the start token included. "
        "Click a row of the chart to pick another head.</p>"
    )
    return f'{caption}<div class="tokens">{"".join(spans)}</div>'


def span(token: str, strength: float, colour: tuple[int, int, int], tip: str, classes: str = "tok") -> str:
    """One token shaded from clear (0) to full colour (1), laid out as the rank colouring lays it out."""
    red, green, blue = colour
    style = f"background: rgba({red}, {green}, {blue}, {0.08 + 0.77 * strength:.2f})"
    text = html.escape(token.removesuffix("@@"))
    gap = "" if token.endswith("@@") else " "  # pieces of one word stay together, as a word
    return f'<span class="{classes}" title="{html.escape(tip)}" style="{style}">{text}</span>{gap}'


def attribution_view(
    prompt, lang, state, method, steps, target, contrast, colouring, inside, *, engine: Engine
) -> tuple:
    """The attribution chart, the target and contrast choices, the coloured text and the summary."""
    state = for_prompt(state, prompt)
    encoded = current(engine, prompt, lang, state)
    with user_errors():
        target_id, contrast_id = token_id(engine, target, "target"), token_id(engine, contrast, "contrast")
        result = attribute(engine, encoded, target_id, contrast_id, method, int(steps))
        analysis = engine.analyse(encoded)
    payload = attribution_payload(result, engine.tokenizer)
    n_typed = len(encoded.input_ids) - len(state["appended"])
    inside = {**inside, "attribution": payload, "rank_html": token_html(analysis.scores, n_typed), "n_typed": n_typed}
    choices = [(f"{c.token}  ({c.prob:.1%})", str(c.id)) for c in analysis.next_token.candidates]
    for picked in (payload["target"], payload["contrast"]):
        if picked and str(picked["id"]) not in {value for _, value in choices}:
            choices.append((picked["token"], str(picked["id"])))
    title = f"Why {html.escape(explained(payload))} · {METHOD_NAMES[payload['method']]}"
    return (
        inside_charts.attribution_figure(payload["tokens"], title),
        gr.update(choices=choices, value=str(payload["target"]["id"])),
        gr.update(choices=[("(none)", ""), *choices], value=str(contrast_id) if contrast_id is not None else ""),
        text_view(inside, colouring),
        summary(payload),
        inside,
    )


def top_attribution_view(prompt, lang, state, method, steps, colouring, inside, *, engine: Engine) -> tuple:
    """The attribution view for the top candidate, no contrast: what "Look inside" shows first."""
    return attribution_view(prompt, lang, state, method, steps, None, None, colouring, inside, engine=engine)


def explained(payload: dict) -> str:
    """What the attribution explains: a token, or a token rather than another."""
    target = f"“{payload['target']['token']}”"
    return target if not payload["contrast"] else f"{target} rather than “{payload['contrast']['token']}”"


def summary(payload: dict) -> str:
    """The quantity explained, how the attributions add up, and the language id's share, a line each."""
    quantity = f"log p(`{payload['target']['token']}`)"
    if payload["contrast"]:
        quantity += f" − log p(`{payload['contrast']['token']}`)"
    total = sum(t["score"] for t in payload["tokens"])
    lines = [f"**Why this next token**: {quantity} = {payload['value']:.3f}."]
    if payload["completeness_error"] is None:
        lines.append(
            f"Gradient × input, a first-order reading at this text alone: the positions sum to {total:+.3f}; "
            "integrated gradients add up to the whole change from a zero embedding."
        )
    else:
        change = payload["value"] - payload["baseline_value"]
        lines.append(
            f"Integrated gradients, {payload['steps']} steps: the positions sum to {total:+.3f} of "
            f"f(text) − f(zero embedding) = {change:+.3f}; completeness error {payload['completeness_error']:.2%}."
        )
    parts = {name: sum(t[f"{name}_part"] for t in payload["tokens"]) for name in PARTS}
    lang = LANG_NAMES.get(payload["lang"], payload["lang"])
    complete = payload["completeness_error"] is not None and abs(total) > 1e-6
    share = f" ({parts['language'] / total:.0%} of the whole change)" if complete else ""
    start = payload["tokens"][0]["score"]
    lines.append(
        f"By embedding: the tokens {parts['token']:+.3f}, the positions {parts['position']:+.3f}, "
        f"the {lang} id **{parts['language']:+.3f}**{share}; the start token `</s>` {start:+.3f}."
    )
    return "  \n".join(lines)


def text_view(inside: dict, colouring: str) -> str:
    """The text's token spans coloured by rank given the prefix, by attribution, or by the language id's share."""
    payload = inside["attribution"]
    if not payload:
        return ""
    if colouring == "rank":
        return inside["rank_html"]
    rows = payload["tokens"][1:]  # the same spans as the rank colouring: the start token is not shown
    largest = max([abs(t[colouring]) for t in rows] + [1e-9])
    spans = []
    for position, row in enumerate(rows, start=1):
        value = row[colouring]
        tip = (
            f"score {row['score']:+.4f} · token {row['token_part']:+.4f} · position {row['position_part']:+.4f}"
            f" · language {row['language_part']:+.4f}"
        )
        classes = "tok new" if position >= inside["n_typed"] else "tok"
        spans.append(span(row["token"], abs(value) / largest, SUPPORT if value >= 0 else AGAINST, tip, classes))
    legend = (
        f'<div class="legend"><span class="tok" style="background: rgb{SUPPORT}; color: #fff">raises '
        f"{html.escape(explained(payload))}</span>"
        f'<span class="tok" style="background: rgb{AGAINST}; color: #fff">lowers it</span></div>'
    )
    return f'<div class="tokens">{"".join(spans)}</div>{legend}'
