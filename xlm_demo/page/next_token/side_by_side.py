"""The next token side by side: under every language id (Compare), and as trained against transformers'
defaults (Fidelity)."""

from __future__ import annotations

from ...engine import Engine
from ...engine.fill import MASK
from ...model import languages
from ..guards import user_errors
from ..look import shown
from ..requests import ModelFacts, read_state
from . import charts

WIDGET_TITLE = "no language id, both ways, the blank's own position"


def compare(fields: dict, *, engine: Engine) -> tuple:
    """The page state's text and chosen tokens under every language id, side by side."""
    with user_errors("Compare"):
        state = read_state(ModelFacts.of(engine), fields)
        typed = [engine.encode(state.prompt, lang, literal=state.literal) for lang in engine.lang2id]
        encodings = [engine.append(text, state.appended) for text in typed]  # every position under each id
        comparison = engine.compare_encoded(encodings, state.top_k, cached=True)
    kl = " · ".join(f"KL({pair.replace('||', ' ‖ ')}) = {value:.3f} nats" for pair, value in comparison.kl.items())
    tops = " · ".join(
        f"{lang}: **{d.candidates[0].token}** {d.candidates[0].prob:.0%}, entropy {d.entropy:.2f}"
        for lang, d in comparison.distributions.items()
    )
    mass = "  \n".join(mass_line(lang, m) for lang, m in comparison.subword_mass.items() if m)
    return charts.comparison_figure(comparison), f"{kl}  \n{tops}  \n{mass}"


def mass_line(lang: str, mass: dict[str, float]) -> str:
    """ "French id: 3% on English-only subwords, 40% on French-only, 20% on shared ones"."""
    own = [f"{share:.0%} on {languages.name(kind)}-only" for kind, share in mass.items() if kind != "shared"]
    own[0] += " subwords"
    return f"{languages.name(lang)} id: {', '.join(own)}, {mass['shared']:.0%} on shared ones"


def fidelity(fields: dict, *, engine: Engine) -> tuple:
    """The page state's text run faithfully and with transformers' defaults (which always read specials), side by
    side; and, for a text with one <special1>, what the hub's Fill-Mask widget answers."""
    with user_errors("Fidelity"):
        state = read_state(ModelFacts.of(engine), fields)
        typed = state.prompt
        faithful = engine.predict_encoded(engine.encode(typed, state.lang, literal=state.literal), state.top_k)
        defaults = engine.transformers_defaults(typed, state.lang, top_k=state.top_k)
    pieces = " ".join(engine.tokenizer.display(i) for i in faithful.input_ids)
    default_pieces = " ".join(engine.tokenizer.display(i) for i in defaults.input_ids)
    shared = {c.id for c in faithful.candidates} & {c.id for c in defaults.candidates}
    summary = (
        f"**As trained:** `{pieces}`  \n**transformers' defaults:** `{default_pieces}`  \n"
        f"{len(shared)} of the top {len(faithful.candidates)} candidates are the same."
    )
    widget, widget_summary = hub_widget(engine, typed)
    return (
        charts.candidates_figure(faithful, title=shown("As trained: causal, </s> start, cased")),
        charts.candidates_figure(defaults, title="transformers' defaults"),
        f"{summary}  \n{widget_summary}" if widget_summary else summary,
        widget,
    )


def hub_widget(engine: Engine, typed: str) -> tuple:
    """The hub Fill-Mask widget's reading of a text with one blank, and a sentence on what it is; else nothing."""
    if typed.count(MASK) != 1:
        return None, ""
    with user_errors("Fidelity"):
        widget = engine.hub_widget_fill(typed)
    top = ", ".join(f"`{c.token}` {c.prob:.0%}" for c in widget.candidates)
    return charts.candidates_figure(widget, title=f"The hub's Fill-Mask widget: {WIDGET_TITLE}"), (
        f"**The hub's Fill-Mask widget** (transformers' fill-mask pipeline on this checkpoint: no language id, "
        f"attention both ways, read at the blank's own position) answers {top}. A model trained to predict the next "
        f"token says there what comes after the blank, not what fills it; **Fill the blank** above ranks the words "
        f"that fill it by the whole text."
    )
