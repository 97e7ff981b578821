"""What the 'Inside the model' section's events do, as plain functions of the inputs and the engine."""

from __future__ import annotations

import html

import gradio as gr

from ...engine import Engine
from ...inside.attention import attention, attention_by_lang
from ...inside.attribution import PARTS, attribute, token_id
from ...model import languages
from ...model.tokenizer import N_SPECIAL
from ...payloads import attribution_payload
from ..coloured_text import token_html
from ..guards import user_errors
from ..look import shown
from ..requests import ModelFacts, read_state
from ..state import fed_sequence
from . import charts

METHOD_NAMES = {"grad_x_input": "gradient × input", "integrated_gradients": "integrated gradients"}
COLOURINGS = [("rank given the prefix", "rank"), ("attribution", "score"), ("language id's share", "language_part")]
SUPPORT, AGAINST = (37, 99, 235), (234, 88, 12)  # blue raises the explained quantity, orange lowers it


def new_inside() -> dict:
    """Nothing computed yet: the attention map and the attribution last shown, and the text they were for."""
    return {"attention": None, "attribution": None, "text": None}


def attention_view(fields, position, difference, layer, head, inside, *, engine: Engine) -> tuple:
    """The layer × head chart for a query position (empty: the last) of the page state's sequence, or two language
    ids' difference, and one head's weights on the text."""
    with user_errors("Attention"):
        encoded = fed_sequence(engine, read_state(ModelFacts.of(engine), fields))
        query = query_position(position)
        if difference:
            pair = compared_pair(engine, encoded.lang)
            maps = attention_by_lang(engine, encoded, query, list(pair))
            first, names = maps[pair[0]], [languages.name(code) for code in pair]
            weights = first.weights - maps[pair[1]].weights  # (L, H, position + 1)
        else:
            first, names = attention(engine, encoded, query), None
            weights = first.weights
    ids = first.input_ids[: first.position + 1]
    tokens = [engine.tokenizer.display(i) for i in ids]
    shown = {"ids": ids, "tokens": tokens, "langs": encoded.position_langs[: len(ids)], "lang": encoded.lang}
    # A tensor, not nested lists: Gradio keeps each session's state, and 48 rows of 512 floats add up.
    shown |= {"position": first.position, "weights": weights, "pair": names}
    inside = {**inside, "attention": shown}
    layer, head = int(layer or len(weights)), int(head or 1)
    label = " − ".join(names) if names else None
    figure = charts.attention_figure(weights.tolist(), tokens, first.position, label)
    return figure, layer, head, head_view(inside, layer, head), inside


def compared_pair(engine: Engine, lang: str) -> tuple[str, str]:
    """The text's language id and another (English where it is not the text's), in the page's order."""
    order = languages.ordered(engine.lang2id)
    if len(order) < 2:
        raise ValueError("the difference needs a checkpoint with two language ids; this one has one")
    other = next(candidate for candidate in order if candidate != lang)
    return tuple(sorted((lang, other), key=order.index))


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
    signed = shown["pair"] is not None
    largest = max(max(abs(w) for w in weights), 1e-9)
    spans = []
    rows = zip(shown["ids"], shown["tokens"], shown["langs"], weights, strict=True)
    for i, (shown_id, token, lang, weight) in enumerate(rows):
        background = shade(abs(weight) / largest, SUPPORT if weight >= 0 or not signed else AGAINST)
        tip = f"position {i} · {'difference' if signed else 'weight'} {weight:+.3f}"
        classes = "tok query" if i == shown["position"] else "tok"
        spans.append(span(shown_id, token, tip, background, classes, lang if lang != shown["lang"] else None))
    if signed:
        first, second = shown["pair"]
        what = f"{first} − {second} weights (blue: more under the {first} id, orange: more under the {second} id)"
    else:
        what = "weights"
    caption = (
        f"<p>Layer {int(layer)}, head {int(head)}: its {what} from position {shown['position']} (outlined) over "
        "every position up to it, the start token included. Click a row of the chart to pick another head.</p>"
    )
    return f'{caption}<div class="tokens">{"".join(spans)}</div>'


def shade(strength: float, colour: tuple[int, int, int]) -> str:
    """A background from clear (strength 0) to nearly full colour (1)."""
    red, green, blue = colour
    return f"rgba({red}, {green}, {blue}, {0.08 + 0.77 * strength:.2f})"


def span(token_id: int, token: str, tip: str, background: str, classes: str, other_lang: str | None) -> str:
    """One token as the rank colouring writes it (a special with its id, a token fed with another language id
    than the text's marked with it), on its own background."""
    text, data = html.escape(token.removesuffix("@@")), ""
    if token_id < N_SPECIAL:
        classes, text = f"{classes} special", f"{text}<sub>{token_id}</sub>"
    if other_lang:
        classes, data = f"{classes} other-lang", f' data-lang="{html.escape(other_lang)}"'
    gap = "" if token.endswith("@@") else " "  # pieces of one word stay together, as a word
    return (
        f'<span class="{classes}"{data} title="{html.escape(tip)}" style="background: {background}">{text}</span>{gap}'
    )


def attribution_view(fields, method, steps, target, contrast, colouring, inside, *, engine: Engine) -> tuple:
    """The attribution chart for the page state's sequence, the target and contrast choices, the coloured text and
    the summary."""
    with user_errors("Attribution"):
        state = read_state(ModelFacts.of(engine), fields)
        encoded = fed_sequence(engine, state)
        target_id, contrast_id = token_id(engine, target, "target"), token_id(engine, contrast, "contrast")
        result = attribute(engine, encoded, target_id, contrast_id, method, int(steps))
        analysis = engine.analyse(encoded)
    payload = attribution_payload(result, engine.tokenizer)
    n_typed = len(encoded.input_ids) - len(state.chosen)
    rank_html = token_html(analysis.scores, n_typed, encoded)
    text = {"langs": encoded.position_langs, "lang": encoded.lang, "n_typed": n_typed, "rank_html": rank_html}
    inside = {**inside, "attribution": payload, "text": text}
    choices = [(f"{c.token}  ({c.prob:.1%})", str(c.id)) for c in analysis.next_token.candidates]
    for picked in (payload["target"], payload["contrast"]):
        if picked and str(picked["id"]) not in {value for _, value in choices}:
            choices.append((picked["token"], str(picked["id"])))
    title = f"Why {shown(explained(payload))} · {METHOD_NAMES[payload['method']]}"  # a Plotly title
    return (
        charts.attribution_figure(payload["tokens"], title),
        gr.update(choices=choices, value=str(payload["target"]["id"])),
        gr.update(choices=[("(none)", ""), *choices], value=str(contrast_id) if contrast_id is not None else ""),
        text_view(inside, colouring),
        summary(payload, "language ids" if encoded.langs else f"{languages.name(encoded.lang)} id"),
        inside,
    )


def top_attribution_view(fields, method, steps, colouring, inside, *, engine: Engine) -> tuple:
    """The attribution view for the top candidate, no contrast: what "Look inside" shows first."""
    return attribution_view(fields, method, steps, None, None, colouring, inside, engine=engine)


def explained(payload: dict) -> str:
    """What the attribution explains: a token, or a token rather than another."""
    target = f"“{payload['target']['token']}”"
    return target if not payload["contrast"] else f"{target} rather than “{payload['contrast']['token']}”"


def summary(payload: dict, ids: str) -> str:
    """The quantity explained, how the attributions add up, and the share of the language `ids`, a line each."""
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
    complete = payload["completeness_error"] is not None and abs(total) > 1e-6
    share = f" ({parts['language'] / total:.0%} of the whole change)" if complete else ""
    start = payload["tokens"][0]["score"]
    lines.append(
        f"By embedding: the tokens {parts['token']:+.3f}, the positions {parts['position']:+.3f}, "
        f"the {ids} **{parts['language']:+.3f}**{share}; the start token `</s>` {start:+.3f}."
    )
    return "  \n".join(lines)


def text_view(inside: dict, colouring: str) -> str:
    """The text's token spans coloured by rank given the prefix, by attribution, or by the language id's share."""
    payload = inside["attribution"]
    if not payload:
        return ""
    text = inside["text"]
    if colouring == "rank":
        return text["rank_html"]
    largest = max([abs(t[colouring]) for t in payload["tokens"][1:]] + [1e-9])
    spans = []
    for position, (row, lang) in enumerate(zip(payload["tokens"], text["langs"], strict=True)):
        if position == 0:
            continue  # the same spans as the rank colouring: the start token is not shown
        value = row[colouring]
        tip = (
            f"score {row['score']:+.4f} · token {row['token_part']:+.4f} · position {row['position_part']:+.4f}"
            f" · language {row['language_part']:+.4f}"
        )
        classes = "tok new" if position >= text["n_typed"] else "tok"
        background = shade(abs(value) / largest, SUPPORT if value >= 0 else AGAINST)
        spans.append(span(row["id"], row["token"], tip, background, classes, lang if lang != text["lang"] else None))
    legend = (
        f'<div class="legend"><span class="tok" style="background: rgb{SUPPORT}; color: #fff">raises '
        f"{html.escape(explained(payload))}</span>"
        f'<span class="tok" style="background: rgb{AGAINST}; color: #fff">lowers it</span></div>'
    )
    return f'<div class="tokens">{"".join(spans)}</div>{legend}'
