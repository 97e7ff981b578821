"""What the "Inside the model: layer by layer" section's events do, as plain functions of the inputs and the engine."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from ...engine import Engine
from ...inside import lens
from ...inside.lens import LensView, TextScore
from ...model import languages
from ..guards import user_errors
from ..requests import ModelFacts, read_state
from ..state import fed_sequence
from . import charts
from .charts import id_name, mass_name

CLEAR_VERDICT = 1.1  # the text reads as a language when that id's perplexity is at least this many times lower
SHOWN = 3  # candidates per layer in the table
SCORING = "*Scoring every token of the text under each language id…*"  # the verdict's place until it comes


def table_headers(engine: Engine) -> list[str]:
    """The table's columns: one per kind of subword Compare counts (German-only, English-only, shared for de/en)."""
    kinds = [mass_name(kind) for kind in engine.subword_masks]
    return ["layer", "language id", "top candidates", "entropy", "target p (rank)", "KL to final", *kinds]


def show(fields, patch_layer, *, engine: Engine) -> Iterator[tuple]:
    """Every layer under every language id for the page state's text (typed and continued) and the patching runs;
    then the whole-text verdict, which scores every token under each id."""
    with user_errors("Layer by layer"):
        state = read_state(ModelFacts.of(engine), fields)
        readings = lens.lens_views(engine, fed_sequence(engine, state))
        view = next(readings)
    target = view.lenses[state.lang].layers[-1].target.id
    choices = [(f"{c.token}  ({c.prob:.1%})", str(c.id)) for c in view.columns]
    update = gr.update(choices=choices, value=str(target))
    yield (update, *views(view, int(patch_layer)), SCORING, None, view)
    with user_errors("Layer by layer"):
        view = next(readings)
    yield ((gr.skip(),) * 7) + (*verdict_views(view), view)


def views(view: LensView, patch_layer: int) -> tuple:
    """The heatmaps, their summary, the focus language's subword lines, the table, the patching chart and summary."""
    parting, other = lens.parting_layer(view)
    lines = charts.focus_mass_lines(view, parting) if view.focus else None
    return (
        charts.lens_heatmaps(view),
        lens_summary(view, parting, other),
        lines,
        table_rows(view),
        *patching_views(view, patch_layer),
    )


def retarget(view: LensView | None, target: str | None, patch_layer) -> tuple:
    """The same readings following the token a person chose (no model run: every column's readings are kept)."""
    if view is None or not target:
        return (gr.skip(),) * 7
    with user_errors("Layer by layer"):
        view = lens.with_target(view, int(target))
    return (*views(view, int(patch_layer)), view)


def repatch(view: LensView | None, patch_layer) -> tuple:
    """The patching chart and summary at another k (no model run: every k is already computed)."""
    return patching_views(view, int(patch_layer)) if view is not None else (gr.skip(), gr.skip())


def patching_views(view: LensView, k: int) -> tuple:
    """The patching chart with k marked, and a line per language id on what patching from layer k on gives."""
    focus, lines = view.focus, []
    for lang, patching in view.patching.items():
        run = patching.runs[k]
        top = ", ".join(f"{c.token} {c.prob:.0%}" for c in run.candidates[:SHOWN])
        line = f"**{id_name(lang)}, earlier positions {id_name(patching.other)} from layer {k} on:** {top}"
        if focus:
            own, other = (view.lenses[x].layers[-1].subword_mass[focus] for x in (lang, patching.other))
            line += (
                f" · {mass_name(focus)} {run.subword_mass[focus]:.0%} (alone: {own:.0%} under {lang}, {other:.0%} "
                f"under {patching.other})"
            )
        lines.append(
            f"{line} · KL to {lang} alone {run.kl_to_own:.2f}, to {patching.other} alone {run.kl_to_other:.2f} nats"
        )
    if not focus:
        return None, "  \n".join(lines)
    finals = {lang: seen.layers[-1].subword_mass[focus] for lang, seen in view.lenses.items()}
    return charts.patching_lines(view.patching, focus, finals, k), "  \n".join(lines)


def lens_summary(view: LensView, parting: int | None, other: str | None) -> str:
    """Where the language id takes hold, in a sentence, and the target's rank layer by layer under each id."""
    focus, lines = view.focus, []
    if focus is None:
        lines.append("The checkpoint's languages have no word lists (`assets/word-lists/`): no subword mass to follow.")
    else:
        own = [r.subword_mass[focus] for r in view.lenses[focus].layers]
        rival = [r.subword_mass[focus] for r in view.lenses[other].layers]
        named, kind = languages.name(focus), mass_name(focus)
        if parting is None:
            lines.append(
                f"**The {named} id adds less than {lens.MIN_LEAD:.0%} {kind} mass to this prediction** ({own[-1]:.0%} "
                f"against {rival[-1]:.0%} under the {id_name(other)})."
            )
        else:
            lines.append(
                f"**The {named} id makes the prediction {named} at layer {parting}:** there its {kind} mass "
                f"({own[parting]:.0%}) first leads the {id_name(other)}'s ({rival[parting]:.0%}) by half of its lead "
                f"at the last layer ({own[-1]:.0%} against {rival[-1]:.0%})."
            )
    target = next(iter(view.lenses.values())).layers[-1].target
    ranks = "; ".join(
        f"under the {id_name(lang)} " + " → ".join(str(r.target.rank) for r in seen.layers)
        for lang, seen in view.lenses.items()
    )
    lines.append(f"Target **{target.token}**, its rank from layer 0 to the last: {ranks}.")
    return "  \n".join(lines)


def table_rows(view: LensView) -> list[list]:
    """One row per layer and language id: top candidates, entropy, target, KL to the final layer, subword mass."""
    rows = []
    for layer in range(len(next(iter(view.lenses.values())).layers)):
        for lang, seen in view.lenses.items():
            r = seen.layers[layer]
            top = ", ".join(f"{c.token} {c.prob:.0%}" for c in r.candidates[:SHOWN])
            target = f"{r.target.prob:.3f} ({r.target.rank})"
            masses = [f"{value:.0%}" for value in r.subword_mass.values()]
            rows.append([layer, lang, top, f"{r.entropy:.2f}", target, f"{r.kl_to_final:.2f}", *masses])
    return rows


def verdict_views(view: LensView) -> tuple:
    """The whole text's perplexity under every language id in a line, and the histogram of its tokens' ranks."""
    n_tokens = len(view.input_ids) - 1
    note = f"{n_tokens} tokens, tokenized with the {languages.name(view.lang)} rules, the same under each id."
    return f"**{verdict_line(view.scores)}**  \n{note}", charts.rank_histogram(view.scores)


def verdict_line(scores: dict[str, TextScore]) -> str:
    """'Reads as German: perplexity 48 under de, 310 under en', or why there is no verdict."""
    known = sorted(((s.perplexity, lang) for lang, s in scores.items() if s.perplexity is not None))
    if not known:
        return "No verdict: the text has no token after the start token."
    perplexities = ", ".join(f"{perplexity_text(p)} under {lang}" for p, lang in known)
    if len(known) < 2 or known[1][0] < CLEAR_VERDICT * known[0][0]:
        return f"No clear verdict: perplexity {perplexities}."
    return f"Reads as {languages.name(known[0][1])}: perplexity {perplexities}."


def perplexity_text(perplexity: float) -> str:
    """48, 1,310 or 3.2: whole numbers from 10 on."""
    return f"{perplexity:,.0f}" if perplexity >= 10 else f"{perplexity:.1f}"
