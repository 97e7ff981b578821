"""Inside the model: the next-token distribution read from every layer (the logit lens), under each language id.

The blocks are post-LN, so every layer's output is already normalised and the output projection (with its bias)
can read any of them. Layer 0 is the embeddings after their LayerNorm, layer l the output of block l; the last
layer is exactly what `Engine.predict` reads. Every position but the last comes from the engine's prefix cache
where it holds them, so only what is new runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace

import torch

from ..engine import Encoded, Engine, TokenScore
from ..engine.scoring import check_top_k
from ..model import languages
from ..model.xlm import XLM, KVCache

HEATMAP_TOKENS = 6  # each id's most probable final tokens are the heatmap's columns
MIN_LEAD = 0.05  # own-subword mass a language's id must add at the last layer before a layer is said to decide


@dataclass(frozen=True)
class Candidate:
    """A token and its probability at one layer."""

    id: int
    token: str
    prob: float


@dataclass(frozen=True)
class Target:
    """The token a person follows through the layers: its probability and rank at one layer."""

    id: int
    token: str
    prob: float
    rank: int


@dataclass(frozen=True)
class LayerReading:
    """The next-token distribution read from one layer's hidden state."""

    layer: int  # 0: the embeddings after their LayerNorm; l: the output of block l
    entropy: float  # nats
    kl_to_final: float  # KL(final layer ‖ this layer), nats
    target: Target
    subword_mass: dict[str, float]  # probability on each language's own subwords and on shared ones (Compare's)
    candidates: list[Candidate]


@dataclass(frozen=True)
class Lens:
    """A text's next-token distribution at every layer under one language id."""

    input_ids: list[int]
    lang: str
    layers: list[LayerReading]


@dataclass(frozen=True)
class PatchedRun:
    """The final distribution when, from layer k on, the earlier positions carry the other id's hidden states."""

    layer: int  # k
    subword_mass: dict[str, float]
    kl_to_own: float  # KL(own id's final ‖ patched), nats
    kl_to_other: float  # KL(other id's final ‖ patched), nats
    candidates: list[Candidate]


@dataclass(frozen=True)
class Patching:
    """Runs of a text under one id with the other id's hidden states patched in from each layer k on."""

    lang: str  # the id the text runs under, and the id of the last position throughout
    other: str  # the id whose hidden states the earlier positions carry from layer k on
    runs: list[PatchedRun]  # k = 0 .. n_layers


@dataclass(frozen=True)
class TextScore:
    """How expected a whole text is under one language id."""

    lang: str
    perplexity: float | None  # exp of the mean negative log-likelihood of the tokens after the start token
    ranks: list[int]  # each token's rank given its prefix


@dataclass(frozen=True)
class LensView:
    """The same tokens under every language id: each id's lens, its patching runs and the whole text's scores."""

    input_ids: list[int]
    lang: str  # whose Moses rules tokenized the text
    focus: str | None  # the language whose own subwords the charts follow (German for de/en); None without lists
    lenses: dict[str, Lens]
    columns: list[Candidate]  # the heatmap's tokens (prob: under the page's id at the last layer)
    grid: dict[str, list[list[Target]]]  # per id, per layer: each column token's probability and rank
    patching: dict[str, Patching]
    scores: dict[str, TextScore] | None  # None in the first of lens_views, while they are computed


def layer_states(
    model: XLM, input_ids: torch.Tensor, langs: torch.Tensor, cache: KVCache | None = None
) -> torch.Tensor:
    """The last position's hidden state after every layer, (B, L + 1, C), for new tokens (B, T) after the cache's.

    The same computation as XLM.forward, keeping what each block hands to the next; `langs` is (B, T) or (B, 1).
    """
    T = input_ids.shape[1]
    start = cache.length if cache is not None else 0
    positions = torch.arange(start, start + T, device=input_ids.device)  # (T,)
    x = model.embed_norm(model.tokens(input_ids) + model.positions(positions) + model.langs(langs))  # (B, T, C)
    states = [x[:, -1]]
    for layer, block in enumerate(model.blocks):
        x = block(x, layer, cache)
        states.append(x[:, -1])
    if cache is not None:
        cache.advance(T)
    return torch.stack(states, 1)  # (B, L + 1, C)


def patch_context(model: XLM, states: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Each row's last-position output when, from layer k on, its earlier positions carry the next row's states.

    `states` (B, L + 1, C) and `cache` (keys and values of all T positions, consumed) come from one layer_states
    call. Row b, index k of the (B, L + 1, C) result: the last position keeps its own states up to layer k, and
    blocks k + 1 .. L attend over the next row's earlier positions. k = L changes nothing; k = 0 is the text with
    the next row's id on every position but the last. Every k runs at once: one single-position pass per block.
    """
    B, n_layers = states.shape[0], len(model.blocks)
    cache.truncate(cache.length - 1)  # the last position is run again, over the earlier positions only
    queries = states.roll(1, dims=0)  # row i: the last position of row i - 1, to run over row i's earlier positions
    x = queries[:0, :1]  # (k * B, 1, C) when block k is reached: B rows for each k' = 0 .. k - 1
    for layer, block in enumerate(model.blocks):
        x = torch.cat([x, queries[:, layer : layer + 1]])  # the rows patched from this layer on join
        x = block(x, layer, SharedContext(cache, rows=layer + 1))
    patched = torch.cat([x, queries[:, n_layers : n_layers + 1]])  # ((L + 1) * B, 1, C), k = L unchanged
    return patched.view(n_layers + 1, B, -1).transpose(0, 1).roll(-1, dims=0)  # (B, L + 1, C), own rows again


class SharedContext(KVCache):
    """A cache's earlier positions shared by several query rows each: row r of a batch reads cache row r % B."""

    def __init__(self, cache: KVCache, rows: int):
        # No KVCache.__init__: this shares the cache's tensors and allocates none.
        self.keys, self.values, self.length = cache.keys, cache.values, cache.length
        self.rows = rows

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The earlier positions' keys and values for every query row, then the rows' own (R, H, 1, D) ones."""
        past_k = self.keys[layer, :, :, : self.length].repeat(self.rows, 1, 1, 1)  # (R, H, past, D)
        past_v = self.values[layer, :, :, : self.length].repeat(self.rows, 1, 1, 1)  # (R, H, past, D)
        return torch.cat([past_k, k], 2), torch.cat([past_v, v], 2)  # (R, H, past + 1, D)


def read(model: XLM, states: torch.Tensor) -> torch.Tensor:
    """Next-token log-probabilities (..., V) read from hidden states (..., C) by the output projection and bias."""
    return model.logits(states).float().log_softmax(-1)


def logit_lens(engine: Engine, encoded: Encoded, top_k: int = 10, target: int | None = None) -> Lens:
    """The lens of one text as fed (each position with its own id); the target defaults to the final top-1.

    What the prefix cache holds of the text is read from it; the rest runs once, and is not added to it.
    """
    check_top_k(top_k)
    target = check_target(engine, target)
    with engine.session(prefix_of(encoded), reserve=1) as session:
        start = session.cache.length
        fresh = torch.tensor([encoded.input_ids[start:]], device=engine.device)  # (1, T - start)
        langs = [engine.lang2id[lang] for lang in encoded.position_langs[start:]]
        with engine.holding_model(), engine.thread_scope(), torch.inference_mode():
            states = layer_states(engine.model, fresh, torch.tensor([langs], device=engine.device), session.cache)
            logprobs = read(engine.model, states[0])  # (L + 1, V)
            return Lens(encoded.input_ids, encoded.lang, readings(engine, logprobs, target, top_k))


def prefix_of(encoded: Encoded) -> Encoded:
    """Every position of an encoding but the last."""
    return Encoded(encoded.input_ids[:-1], encoded.lang, encoded.truncated, encoded.langs[:-1])


def lens_view(engine: Engine, encoded: Encoded, top_k: int = 10, target: int | None = None) -> LensView:
    """The same tokens under every language id: each id's lens, the patching runs and the whole text's scores."""
    *_, view = lens_views(engine, encoded, top_k, target)
    return view


def lens_views(engine: Engine, encoded: Encoded, top_k: int = 10, target: int | None = None) -> Iterator[LensView]:
    """The view as soon as every layer is read (its `scores` None), then the same view with the whole text's scores.

    Each id's positions but the last run where the prefix cache lacks them (one pass, no per-position logits); the
    last positions then run in one batch. The scores need each position's logits, as costly again for a long text:
    they come second, and the prefix cache keeps them. The target defaults to the final top-1 under the id the text
    was tokenized for.
    """
    check_top_k(top_k)
    target = check_target(engine, target)
    langs = list(engine.lang2id)
    n, T, L = len(langs), len(encoded.input_ids), engine.model.config.n_layers
    prefix = encoded.input_ids[:-1]
    with ExitStack() as held:
        sessions = [held.enter_context(engine.session(Encoded(prefix, lang, encoded.truncated), 1)) for lang in langs]
        cache = engine.model.new_cache(n, T)
        engine.run_pending(*sessions)  # every id's positions in one batch
        for row, session in enumerate(sessions):
            keys, values = session.cache.span(0, T - 1)  # (L, T - 1, H, D)
            cache.keys[:, row, :, : T - 1] = keys.transpose(1, 2)
            cache.values[:, row, :, : T - 1] = values.transpose(1, 2)
        cache.advance(T - 1)
        last = torch.full((n, 1), encoded.input_ids[-1], device=engine.device)  # (n, 1)
        lang_ids = torch.tensor([[engine.lang2id[lang]] for lang in langs], device=engine.device)  # (n, 1)
        with engine.holding_model(), engine.thread_scope(), torch.inference_mode():
            states = layer_states(engine.model, last, lang_ids, cache)  # (n, L + 1, C)
            patched = patch_context(engine.model, states, cache)  # (n, L + 1, C)
            logprobs = read(engine.model, torch.cat([states, patched[:, :L]], 1))  # (n, 2 L + 1, V)
            lensed = logprobs[:, : L + 1]  # (n, L + 1, V)
            patched = torch.cat([logprobs[:, L + 1 :], lensed[:, L:]], 1)  # (n, L + 1, V): k = L is the own final
            own = langs.index(encoded.lang)
            if target is None:
                target = int(lensed[own, -1].argmax())
            lenses = {
                lang: Lens(encoded.input_ids, lang, readings(engine, lensed[i], target, top_k))
                for i, lang in enumerate(langs)
            }
            columns = heatmap_columns(engine, lensed, own, target)
            grid = {lang: targets(engine, lensed[i], [c.id for c in columns]) for i, lang in enumerate(langs)}
            patching = {
                lang: patching_runs(
                    engine, lang, langs[(i + 1) % n], patched[i], lensed[i, -1], lensed[(i + 1) % n, -1]
                )
                for i, lang in enumerate(langs)
            }
        focus = focus_language(engine)
        view = LensView(encoded.input_ids, encoded.lang, focus, lenses, columns, grid, patching, scores=None)
        yield view
        scores = {}
        # Scores the positions run above, every id's in one output projection: no pass through the blocks left.
        for lang, session, logits in zip(langs, sessions, engine.next_logits_together(sessions), strict=True):
            scores[lang] = text_score(lang, session.scores, logits, encoded.input_ids[-1])
        yield replace(view, scores=scores)


def text_score(lang: str, scores: list[TokenScore], logits: torch.Tensor | None, last: int) -> TextScore:
    """A text's perplexity and ranks from its prefix's scores and the (V,) logits that predict its last token."""
    logprobs, ranks = [s.logprob for s in scores[1:]], [s.rank for s in scores[1:]]  # the start token has none
    if logits is not None:
        logprobs.append(float(logits.float().log_softmax(-1)[last]))
        ranks.append(int((logits > logits[last]).sum()) + 1)
    perplexity = math.exp(-sum(logprobs) / len(logprobs)) if logprobs else None
    return TextScore(lang, perplexity, ranks)


def with_target(view: LensView, target: int) -> LensView:
    """The same readings, following another of the heatmap's tokens through the layers."""
    column = next((i for i, c in enumerate(view.columns) if c.id == target), None)
    if column is None:
        raise ValueError(f"the target must be one of the heatmap's tokens, got id {target}")
    lenses = {
        lang: replace(lens, layers=[replace(r, target=view.grid[lang][r.layer][column]) for r in lens.layers])
        for lang, lens in view.lenses.items()
    }
    return replace(view, lenses=lenses)


def focus_language(engine: Engine) -> str | None:
    """The language whose own-subword mass the charts follow: the first one with a word list other than English
    (German for de/en, French for en/fr); None where fewer than two languages have lists."""
    listed = [lang for lang in languages.ordered(engine.lang2id) if lang in engine.subword_masks]
    return next((lang for lang in listed if lang != "en"), None)


def parting_layer(view: LensView) -> tuple[int | None, str | None]:
    """Where the focus language's id takes hold: the first layer at which its lead in that language's subword mass
    over another id (English where there is one) reaches half of its lead at the last layer; and that other id.

    The layer is None without a focus language, or when its id adds less than MIN_LEAD at the last layer.
    """
    focus, lenses = view.focus, view.lenses
    if focus is None:
        return None, None
    other = "en" if "en" in lenses else next(lang for lang in lenses if lang != focus)
    lead = [
        own.subword_mass[focus] - rival.subword_mass[focus]
        for own, rival in zip(lenses[focus].layers, lenses[other].layers, strict=True)
    ]
    if lead[-1] < MIN_LEAD:
        return None, other
    return next(layer for layer, value in enumerate(lead) if value >= lead[-1] / 2), other


def check_target(engine: Engine, target: int | None) -> int | None:
    """The target token id, if it is in the vocabulary."""
    vocab_size = engine.model.config.vocab_size
    if target is not None and not 0 <= target < vocab_size:
        raise ValueError(f"the target must be a token id between 0 and {vocab_size - 1}, got {target}")
    return target


def readings(engine: Engine, logprobs: torch.Tensor, target: int | None, top_k: int) -> list[LayerReading]:
    """Every layer's reading from its (L + 1, V) log-probabilities; the target defaults to the final top-1."""
    probs = logprobs.exp()
    entropy = -(probs * logprobs).nan_to_num().sum(-1)  # (L + 1,)
    kl = (probs[-1] * (logprobs[-1] - logprobs)).nan_to_num().sum(-1)  # (L + 1,): KL(final ‖ layer)
    mass = subword_mass(engine, probs)
    target = int(logprobs[-1].argmax()) if target is None else target
    followed = targets(engine, logprobs, [target])
    top = logprobs.topk(min(top_k, logprobs.shape[-1]))  # (L + 1, k)
    return [
        LayerReading(
            layer=layer,
            entropy=float(entropy[layer]),
            kl_to_final=float(kl[layer]),
            target=followed[layer][0],
            subword_mass=mass[layer],
            candidates=candidates(engine, top.indices[layer], top.values[layer]),
        )
        for layer in range(logprobs.shape[0])
    ]


def targets(engine: Engine, logprobs: torch.Tensor, ids: list[int]) -> list[list[Target]]:
    """Per layer of (L + 1, V) log-probabilities: each token's probability and rank."""
    picked = logprobs[:, ids]  # (L + 1, n)
    # One token at a time: comparing all at once builds an (L + 1, n, V) mask and runs three times slower.
    ranks = torch.stack([(logprobs > picked[:, j, None]).sum(-1) for j in range(len(ids))], 1) + 1  # (L + 1, n)
    names = [engine.tokenizer.display(i) for i in ids]
    return [
        [Target(i, name, math.exp(lp), rank) for i, name, lp, rank in zip(ids, names, row, rank_row, strict=True)]
        for row, rank_row in zip(picked.tolist(), ranks.tolist(), strict=True)
    ]


def subword_mass(engine: Engine, probs: torch.Tensor) -> list[dict[str, float]]:
    """Per row of (N, V) probabilities: the mass on each language's own subwords and on shared ones, as Compare
    counts them (no kinds where the checkpoint's languages lack word lists)."""
    masks = engine.subword_masks
    if not masks:
        return [{} for _ in range(probs.shape[0])]
    matrix = torch.stack(list(masks.values())).to(probs)  # (K, V)
    return [dict(zip(masks, row, strict=True)) for row in (probs @ matrix.T).tolist()]  # (N, K)


def candidates(engine: Engine, ids: torch.Tensor, logprobs: torch.Tensor) -> list[Candidate]:
    """Tokens with their probabilities, from (k,) ids and log-probabilities."""
    return [
        Candidate(i, engine.tokenizer.display(i), math.exp(lp))
        for i, lp in zip(ids.tolist(), logprobs.tolist(), strict=True)
    ]


def heatmap_columns(engine: Engine, lensed: torch.Tensor, own: int, target: int) -> list[Candidate]:
    """The target, then each id's most probable final tokens, each once, from (n, L + 1, V) log-probabilities."""
    ids = [target]
    for row in lensed[:, -1]:
        ids += [i for i in row.topk(HEATMAP_TOKENS).indices.tolist() if i not in ids]
    return candidates(engine, torch.tensor(ids), lensed[own, -1, ids])


def patching_runs(
    engine: Engine, lang: str, other: str, patched: torch.Tensor, own_final: torch.Tensor, other_final: torch.Tensor
) -> Patching:
    """The patched runs of one id from (L + 1, V) log-probabilities, compared with both ids' own final ones."""
    probs = patched.exp()
    kl_own = (own_final.exp() * (own_final - patched)).nan_to_num().sum(-1)  # (L + 1,)
    kl_other = (other_final.exp() * (other_final - patched)).nan_to_num().sum(-1)  # (L + 1,)
    mass = subword_mass(engine, probs)
    top = patched.topk(HEATMAP_TOKENS)  # (L + 1, k)
    runs = [
        PatchedRun(
            layer=k,
            subword_mass=mass[k],
            kl_to_own=float(kl_own[k]),
            kl_to_other=float(kl_other[k]),
            candidates=candidates(engine, top.indices[k], top.values[k]),
        )
        for k in range(patched.shape[0])
    ]
    return Patching(lang, other, runs)
