"""The page's header line and its Model panel: what runs, and the fidelity choices in force."""

from __future__ import annotations

from ..engine import Engine
from ..model import languages
from ..model.checkpoint import BUNDLED_NAME, DEFAULT_MODEL
from ..model.tokenizer import SPECIAL_ROLES

# What each model learned from, as its card says; for any other checkpoint, its own card.
TRAINED_ON = {
    DEFAULT_MODEL: "Wikipedia in English and German (Lample & Conneau 2019)",
    BUNDLED_NAME: "Debian 12's package documentation and fortunes, for 29 minutes on two CPU cores "
    "(assets/xlm-mini-ende/README.md): a stand-in that knows little beyond those words",
}


def precision(engine: Engine) -> str:
    """The precision that runs: one dtype, or the weights' beside the activations'."""
    activations = str(engine.dtype).removeprefix("torch.")
    if engine.quantized:
        return f"int8 linear layers, {activations} activations"
    weights = " and ".join(sorted(str(dtype).removeprefix("torch.") for dtype in engine.weights_dtypes))
    return activations if weights == activations else f"{weights} weights, {activations} activations"


def model_line(engine: Engine) -> str:
    """One line naming the checkpoint, device and precision."""
    where = f"on **{engine.device.type}** in **{precision(engine)}**"
    return f"Model **{engine.source}** {where} · causal attention · `</s>` start"


def model_panel(engine: Engine) -> str:
    """The fidelity choices in force and the model card's intended use, a sentence each."""
    case = "lowercased and accent-stripped" if engine.tokenizer.lowercase else "kept cased, with accents"
    langs = ", ".join(f"{languages.name(lang)} (`{lang}`) = {i}" for lang, i in engine.lang2id.items())
    named = languages.names(languages.ordered(engine.lang2id))
    return "\n".join(
        [
            f"- **Checkpoint:** {engine.source}; {engine.model.config.n_layers} layers, "
            f"{engine.model.config.dim} dimensions, {engine.tokenizer.vocab_size:,} tokens.",
            f"- **Languages:** {langs}, from the checkpoint's `lang2id`; every position carries the chosen one.",
            "- **Attention:** causal, as the model was trained (the hub config's `causal: false` is overridden).",
            "- **Start token:** `</s>`, as in training; no `<s>`, no trailing `</s>`.",
            f"- **Text:** Moses-tokenized with the chosen language's rules, {case}, then BPE.",
            "- **Special tokens**, typed as written (unless *literal* is ticked): "
            + "; ".join(f"`{name}` = {ids}, {role}" for ids, name, role in SPECIAL_ROLES)
            + ".",
            f"- **Precision:** {precision(engine)}.",
            f"- **Speed:** matrix products on {engine.products}; a prefix cache of up to "
            f"{engine.prefix_cache.budget_bytes / 2**20:.0f} MB ({engine.prefix_cache.capacity:,} positions), shared "
            "by every session, keeps what texts already ran, so an event runs only what is new.",
            f"- **Intended use:** exploring a causal language model of {named} (Lample & Conneau 2019).",
            "- **Out of scope:** facts, advice or any text presented as true; it continues text, nothing more.",
            f"- **Known limitations:** trained on {trained_on(engine)}; it repeats itself, mixes languages and "
            "carries the biases of its data.",
        ]
    )


def trained_on(engine: Engine) -> str:
    """What the loaded model was trained on, as its card says."""
    for name, data in TRAINED_ON.items():
        if engine.source == name or engine.source.startswith(f"{name}:"):
            return data
    return "the data its model card describes"
