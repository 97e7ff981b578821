"""The one object the CLI, the API and the UI call: distributions, scores, continuations, comparisons."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property

import torch

from . import blas
from .bpe import load_bpe
from .checkpoint import Checkpoint, load_checkpoint, load_default_checkpoint
from .languages import listing, log_languages
from .model import XLM, KVCache, quantize_int8
from .prefix_cache import Key, Match, PrefixCache
from .sampling import GREEDY, SamplingParams, choose, sampling_distribution
from .subwords import mass_by_kind, subword_masks
from .tokenizer import Tokenizer, vocab_is_cased
from .weights import build_model

log = logging.getLogger("xlm_demo")

START_ID = 1  # </s>: XLM's streams and sentences begin with it; <s> (0) never appears in training
PAD_ID = 2
BOS_ID = 0  # <s>: what transformers' encode() puts first
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
MAX_NEW_TOKENS = 256
# Padded positions in one batched forward of predict_many: short prompts are not run at a long one's length.
BATCH_TOKENS = 1024
N_EXPECTED = 3  # alternatives kept per scored token
# Keys and values of prefixes already run, shared by every session: 2,730 positions of the real model (48 KB
# each), 16,000 of the bundled one.
PREFIX_CACHE_BYTES = 128 << 20
# Texts whose ids are kept: Step, pick and Undo read the text the last keystroke tokenized (4 ms at 300 words).
RECENT_TEXTS = 16


@dataclass(frozen=True)
class Encoded:
    """What the model is fed for a text: the start token, then the text's last tokens that fit."""

    input_ids: list[int]
    lang: str  # the typed text's language id
    truncated: bool
    langs: tuple[str, ...] = ()  # each position's language id where they differ (a continuation under another)

    @property
    def position_langs(self) -> list[str]:
        """The language id each position is fed with."""
        return list(self.langs) if self.langs else [self.lang] * len(self.input_ids)


@dataclass(frozen=True)
class Candidate:
    """One possible next token: its probability before and after the sampling settings."""

    id: int
    token: str  # display form, word boundaries visible
    piece: str  # the BPE unit as the vocabulary holds it
    prob: float
    logprob: float
    rank: int
    sampling_prob: float


@dataclass(frozen=True)
class Distribution:
    """The next-token distribution after a prefix: its entropy and its top candidates."""

    input_ids: list[int]
    lang: str
    entropy: float  # nats, over the whole vocabulary
    candidates: list[Candidate]
    kept_mass: float  # probability left after temperature 0, top-k and top-p, before renormalising
    truncated: bool = False
    sampling: SamplingParams = GREEDY  # the settings `sampling_prob` and `kept_mass` describe


@dataclass(frozen=True)
class TokenScore:
    """How expected one token of a text was given the tokens before it (None for the start token)."""

    id: int
    token: str
    prob: float | None
    logprob: float | None
    rank: int | None
    expected: tuple[tuple[str, float], ...] = ()  # what the model found most likely there instead


@dataclass(frozen=True)
class Analysis:
    """A text's token scores and the distribution after it, from one forward pass."""

    scores: list[TokenScore]
    next_token: Distribution


@dataclass(frozen=True)
class Step:
    """One continued token, with the distribution it was chosen from."""

    id: int
    token: str
    prob: float
    logprob: float
    rank: int
    distribution: Distribution


@dataclass(frozen=True)
class Comparison:
    """The same text under every language id: each distribution and their KL divergences (nats)."""

    distributions: dict[str, Distribution]
    kl: dict[str, float]  # "de||en": KL(P_de || P_en), and the reverse
    subword_mass: dict[str, dict[str, float]]  # per language id: probability on each language's own subwords, shared


@dataclass
class Session:
    """A growing token sequence and its KV cache, owned by one caller."""

    ids: list[int]
    lang: str  # the typed text's
    langs: list[str]  # each position's language id
    cache: KVCache
    truncated: bool
    pending: list[int] = field(default_factory=list)  # ids not yet run through the model
    last_logits: torch.Tensor | None = None  # (vocab,) after the last fed token
    cached: Match = field(default_factory=lambda: Match([]))  # its prefix held (pinned) in the prefix cache
    scores: list[TokenScore] = field(default_factory=list)  # of its first positions, each given those before it
    unscored: torch.Tensor | None = None  # (T, C) last hidden states of the positions run but not yet scored


def thread_scoped(method: Callable) -> Callable:
    """An engine method run inside the engine's thread scope (see blas.OneTorchThread), in the calling thread only."""

    @functools.wraps(method)
    def scoped(self: Engine, *args, **kwargs):
        with self.thread_scope():
            return method(self, *args, **kwargs)

    return scoped


class Engine:
    """A loaded checkpoint and tokenizer on one device, answering every question the demo asks."""

    def __init__(
        self,
        model: XLM,
        tokenizer: Tokenizer,
        lang2id: dict[str, int],
        source: str,
        notice: str | None = None,
        quantized: bool = False,
        prefix_cache_bytes: int = PREFIX_CACHE_BYTES,
    ):
        self.model = model
        self.quantized = quantized  # int8 linear layers: faster on CPU, probabilities within a few 1e-3
        self.tokenizer = tokenizer
        self.lang2id = lang2id
        self.source = source
        self.notice = notice  # shown on the page, e.g. when the bundled model stands in for the real one
        on_openblas = any(getattr(module, "openblas", False) for module in model.modules())
        self.products = "openblas" if on_openblas else "torch"  # the library running the matrix products
        self.thread_scope = blas.OneTorchThread() if on_openblas else nullcontext
        self.prefix_cache = PrefixCache(model.config, prefix_cache_bytes, self.dtype, self.device)
        self._token_ids = functools.lru_cache(maxsize=RECENT_TEXTS)(self._tokenize)
        log.info(
            "prefix cache: up to %d MB, %d positions of %d KB",
            self.prefix_cache.budget_bytes >> 20,
            self.prefix_cache.capacity,
            self.prefix_cache.bytes_per_position >> 10,
        )

    @classmethod
    def load(
        cls,
        ref: str | None = None,
        device: str = "auto",
        dtype: str = "float32",
        quantize: str = "none",
        products: str = "auto",
    ) -> Engine:
        """Read a checkpoint (None: the real one, else the bundled one) and place it on a device."""
        checkpoint, notice = (load_checkpoint(ref), None) if ref else load_default_checkpoint()
        return cls.from_checkpoint(
            checkpoint, device=device, dtype=dtype, notice=notice, quantize=quantize, products=products
        )

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Checkpoint,
        device: str = "auto",
        dtype: str = "float32",
        notice: str | None = None,
        quantize: str = "none",
        products: str = "auto",
        prefix_cache_bytes: int = PREFIX_CACHE_BYTES,
    ) -> Engine:
        """An engine for an already-read checkpoint; `products` picks the CPU's float32 matrix-product library
        (auto: whichever of openblas and torch runs a token faster here)."""
        target = resolve_device(device)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype}")
        if dtype != "float32" and target.type == "cpu":
            raise ValueError(f"{dtype} is for GPUs; on the CPU the model runs in float32")
        if quantize not in ("none", "int8"):
            raise ValueError(f"quantize must be none or int8, got {quantize}")
        if quantize == "int8" and (target.type != "cpu" or dtype != "float32"):
            raise ValueError("int8 quantization is for the CPU in float32")
        model = build_model(checkpoint.config, checkpoint.state_dict).to(device=target, dtype=DTYPES[dtype])
        if products not in ("auto", "openblas", "torch"):
            raise ValueError(f"products must be auto, openblas or torch, got {products}")
        if quantize == "int8":
            model = quantize_int8(model)
        elif target.type == "cpu":
            blas.route(model, openblas=choose_products(model, products) == "openblas")
        lowercase = not vocab_is_cased(checkpoint.vocab)
        if checkpoint.config_lowercases and not lowercase:
            log.info(
                "tokenizer_config.json asks to lowercase and strip accents, but the vocabulary is cased: "
                "text keeps its case and accents, as in training"
            )
        bpe, langs = load_bpe(checkpoint.merges_path), tuple(checkpoint.lang2id)
        tokenizer = Tokenizer(checkpoint.vocab, bpe, lowercase=lowercase, langs=langs)
        log_languages(checkpoint.lang2id)
        return cls(
            model,
            tokenizer,
            checkpoint.lang2id,
            checkpoint.source,
            notice,
            quantized=quantize == "int8",
            prefix_cache_bytes=prefix_cache_bytes,
        )

    @property
    def device(self) -> torch.device:
        return self.model.tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.tokens.weight.dtype

    @property
    def max_positions(self) -> int:
        return self.model.config.max_positions

    def check_lang(self, lang: str) -> str:
        """The language code, if the checkpoint has it."""
        if lang not in self.lang2id:
            raise ValueError(f"language must be one of {listing(self.lang2id)}, got {lang!r}")
        return lang

    def encode(self, text: str, lang: str, reserve: int = 0, literal: bool = False) -> Encoded:
        """The start token and the text's ids, keeping the last ones that fit with `reserve` more positions.

        Specials written in the text (`</s>`, `<special1>` ...) are their ids unless `literal`.
        """
        return self.fit(list(self._token_ids(text, self.check_lang(lang), literal)), lang, reserve)

    def _tokenize(self, text: str, lang: str, literal: bool) -> tuple[int, ...]:
        """The text's ids, as a tuple: shared by every caller of the recent-texts cache."""
        return tuple(self.tokenizer.encode(text, lang, literal=literal))

    def fit(self, ids: list[int], lang: str, reserve: int = 0, id_langs: list[str] | None = None) -> Encoded:
        """The start token and the last of `ids` that fit in the model's positions, `reserve` left free; `id_langs`
        gives each id its own language id (default: `lang` for all)."""
        room = self.max_positions - 1 - reserve
        if room < 1:
            raise ValueError(f"{reserve} new tokens leave no room for the text in {self.max_positions} positions")
        truncated = len(ids) > room
        if truncated:
            log.warning("the text has %d tokens; keeping its last %d", len(ids), room)
            ids, id_langs = ids[len(ids) - room :], id_langs and id_langs[len(id_langs) - room :]
        langs = (lang, *id_langs) if id_langs and set(id_langs) != {lang} else ()
        return Encoded([START_ID, *ids], lang, truncated, langs)

    def append(self, encoded: Encoded, ids: list[int], reserve: int = 0, id_langs: list[str] | None = None) -> Encoded:
        """An encoding with more tokens after it, within the model's positions; `id_langs` gives each new token its
        language id (default: the text's)."""
        new_langs = [self.check_lang(lang) for lang in id_langs] if id_langs else [encoded.lang] * len(ids)
        fitted = self.fit(
            [*encoded.input_ids[1:], *ids], encoded.lang, reserve, [*encoded.position_langs[1:], *new_langs]
        )
        return replace(fitted, truncated=fitted.truncated or encoded.truncated)

    def predict(self, text: str, lang: str, top_k: int = 10, sampling: SamplingParams | None = None) -> Distribution:
        """The next-token distribution after a text."""
        return self.predict_encoded(self.encode(text, lang), top_k, sampling)

    @thread_scoped
    def predict_encoded(
        self, encoded: Encoded, top_k: int = 10, sampling: SamplingParams | None = None
    ) -> Distribution:
        """The next-token distribution after an encoding."""
        logits = self._last_logits([encoded])[0]
        return self.distribution(logits, encoded, top_k, sampling or SamplingParams())

    @thread_scoped
    def predict_many(self, requests: list[tuple[Encoded, int]]) -> list[Distribution]:
        """Next-token distributions for several (encoding, top_k) requests, in batches of similar length."""
        encodings = [encoded for encoded, _ in requests]
        rows: dict[int, torch.Tensor] = {}  # request index -> (vocab,) logits
        for group in padded_groups([len(e.input_ids) for e in encodings]):
            rows.update(zip(group, self._last_logits([encodings[i] for i in group]), strict=True))
        return [
            self.distribution(rows[index], encoded, top_k, SamplingParams())
            for index, (encoded, top_k) in enumerate(requests)
        ]

    @thread_scoped
    def transformers_defaults(self, text: str, lang: str, top_k: int = 10) -> Distribution:
        """What the model card's recipe gets: lowercased, English Moses rules, <s> … </s>, bidirectional attention.

        Only for showing why the demo does otherwise; every choice here is one the README calls wrong.
        """
        ids = self.lowercasing_tokenizer.encode(text, "en")[-(self.max_positions - 2) :]  # transformers 5 drops `lang`
        encoded = Encoded([BOS_ID, *ids, START_ID], self.check_lang(lang), truncated=False)
        tensor = torch.tensor([encoded.input_ids], device=self.device)  # (1, T)
        with torch.inference_mode():
            hidden = self.model(tensor, self._langs(lang, 1), causal=False)  # (1, T, C)
            logits = self.model.logits(hidden[:, -1])[0].float()  # (V,)
        return self.distribution(logits, encoded, top_k, SamplingParams())

    def compare(self, text: str, top_k: int = 10) -> Comparison:
        """The next-token distributions under every language id, in one batched forward."""
        return self.compare_encoded([self.encode(text, lang) for lang in self.lang2id], top_k)

    @thread_scoped
    def compare_encoded(self, encodings: list[Encoded], top_k: int = 10, cached: bool = False) -> Comparison:
        """The next-token distribution of each encoding (one per language id), in one batched forward; or, `cached`,
        each through the prefix cache, as the page's Compare: what the page showed runs no more, and what runs is
        kept (scored, for the next view of it)."""
        logits = self._cached_last_logits(encodings) if cached else self._last_logits(encodings)  # (n_langs, vocab)
        logprobs = logits.log_softmax(-1)
        distributions = {
            e.lang: self.distribution(row, e, top_k, SamplingParams()) for e, row in zip(encodings, logits, strict=True)
        }
        kl = {
            f"{p.lang}||{q.lang}": kl_divergence(logprobs[i], logprobs[j])
            for i, p in enumerate(encodings)
            for j, q in enumerate(encodings)
            if i != j
        }
        masks = self.subword_masks
        mass = {e.lang: mass_by_kind(row.exp(), masks) for e, row in zip(encodings, logprobs, strict=True)}
        return Comparison(distributions, kl, mass)

    @cached_property
    def lowercasing_tokenizer(self) -> Tokenizer:
        """The same vocabulary and BPE with the hub config's lowercasing, for the fidelity view only."""
        return Tokenizer(self.tokenizer.vocab, self.tokenizer.bpe, lowercase=True, langs=("en",))

    @cached_property
    def subword_masks(self) -> dict[str, torch.Tensor]:
        """Which vocabulary units make words of one language only, or of several (from assets/word-lists)."""
        return subword_masks(self.tokenizer, tuple(self.lang2id))

    def score(self, text: str, lang: str) -> tuple[Encoded, list[TokenScore]]:
        """Each token's probability and rank given the tokens before it, from one forward pass."""
        encoded = self.encode(text, lang)
        return encoded, self.analyse(encoded).scores

    @thread_scoped
    def analyse(self, encoded: Encoded, top_k: int = 10, sampling: SamplingParams | None = None) -> Analysis:
        """Every token's score and the next-token distribution, running only the positions not already cached."""
        with self.session(encoded) as session:
            logits = self.next_logits(session)
            return Analysis(session.scores, self.distribution(logits, encoded, top_k, sampling or SamplingParams()))

    @contextmanager
    def session(self, encoded: Encoded, reserve: int = 0) -> Iterator[Session]:
        """A session holding an encoded text, with room for `reserve` more tokens, resumed from the prefix cache;
        when the block ends, the prefix cache may evict what the session held."""
        session = self._start(encoded, reserve)
        try:
            yield session
        finally:
            self.prefix_cache.release(session.cached)

    def _start(self, encoded: Encoded, reserve: int) -> Session:
        """A session holding an encoded text, with room for `reserve` more tokens, resumed from the prefix cache."""
        capacity = min(self.max_positions, len(encoded.input_ids) + reserve)
        cache = self.model.new_cache(1, capacity)
        keys = self._keys(encoded.input_ids, encoded.position_langs)
        match = self.prefix_cache.match_prefix(keys)
        session = Session(
            ids=list(encoded.input_ids),
            lang=encoded.lang,
            langs=encoded.position_langs,
            cache=cache,
            truncated=encoded.truncated,
        )
        session.cached, session.scores = match, [node.score for node in match.nodes]
        session.last_logits = self.prefix_cache.last_logits(match)
        # The logits after the last cached position score the first new one: kept, or run that position again.
        rerun = 0 if session.last_logits is not None or not match.nodes else 1
        session.pending = session.ids[len(match) - rerun :]
        if session.pending or reserve:  # the keys and values are copied only for a session that runs the model
            self.prefix_cache.read(match, cache, n_positions=len(match) - rerun)
        return session

    def extend(self, session: Session, ids: list[int], lang: str | None = None) -> None:
        """Append tokens fed with `lang` (default: the text's); the model reads them when next asked."""
        session.ids.extend(ids)
        session.langs.extend([lang or session.lang] * len(ids))
        session.pending.extend(ids)

    def _scores(self, rows: torch.Tensor, ids: list[int], first: bool) -> list[TokenScore]:
        """Scores of `ids` from (len(ids), V) logits rows, each of the position before; `first`: ids[0] is the
        start token, scored by nothing."""
        scores = [TokenScore(START_ID, self.tokenizer.display(START_ID), None, None, None)] if first else []
        targets = torch.tensor(ids[1:] if first else ids, device=rows.device)  # (N,)
        logprobs = rows.log_softmax(-1)  # (N, V)
        picked = logprobs.gather(-1, targets[:, None])[:, 0]  # (N,)
        ranks = (rows > rows.gather(-1, targets[:, None])).sum(-1) + 1  # (N,)
        expected = logprobs.topk(min(N_EXPECTED, logprobs.shape[-1]))  # (N, N_EXPECTED)
        columns = (
            targets.tolist(),
            picked.tolist(),
            ranks.tolist(),
            expected.indices.tolist(),
            expected.values.tolist(),
        )
        for token_id, logprob, rank, alt_ids, alt_logprobs in zip(*columns, strict=True):
            alternatives = tuple(
                (self.tokenizer.display(i), math.exp(lp)) for i, lp in zip(alt_ids, alt_logprobs, strict=True)
            )
            token = self.tokenizer.display(token_id)
            scores.append(TokenScore(token_id, token, math.exp(logprob), logprob, rank, alternatives))
        return scores

    def _keys(self, ids: list[int], langs: list[str]) -> list[Key]:
        """The prefix cache's key of each position: its language id and token id."""
        return [(self.lang2id[lang], token_id) for lang, token_id in zip(langs, ids, strict=True)]

    @thread_scoped
    def next_logits(self, session: Session) -> torch.Tensor:
        """(vocab,) logits after everything in the session, running and scoring only the tokens not yet seen."""
        self.run_pending(session)
        if session.unscored is not None:
            self._score_run(session)
        return session.last_logits

    @thread_scoped
    def run_pending(self, session: Session) -> None:
        """Run the tokens not yet seen through the model; their scores wait for next_logits (the output
        projection of every position, as costly as the blocks for a long text)."""
        if not session.pending:
            return
        start = session.cache.length
        ids = torch.tensor([session.pending], device=self.device)  # (1, T)
        with torch.inference_mode():
            langs = self._lang_ids([session.langs[start:]])  # (1, T)
            hidden = self.model(ids, langs, cache=session.cache)[0]  # (T, C)
        unscored = session.unscored
        session.unscored = hidden if unscored is None else torch.cat([unscored, hidden])  # none is lost unscored
        session.pending = []

    def _score_run(self, session: Session) -> None:
        """Score the positions run last from their hidden states, and keep them in the prefix cache."""
        hidden, session.unscored = session.unscored, None
        start = session.cache.length - hidden.shape[0]
        with torch.inference_mode():
            logits = self.model.logits(hidden).float()  # (T, V): row t predicts the token after it
        if session.last_logits is not None and start == len(session.scores):
            logits = torch.cat([session.last_logits[None], logits])  # the cached position's row first
        first = not session.scores  # the start token's own score comes first
        session.scores += self._scores(logits[:-1], session.ids[len(session.scores) :], first)
        session.last_logits = logits[-1]
        keys = self._keys(session.ids, session.langs)
        cached = self.prefix_cache.insert(session.cached, keys, session.cache, session.scores, session.last_logits)
        session.cached = cached  # the prefix cache now holds these positions too, pinned for this session

    def generate(
        self,
        encoded: Encoded,
        max_new_tokens: int = 20,
        sampling: SamplingParams = GREEDY,
        top_k: int = 10,
        lang: str | None = None,
    ) -> Iterator[Step]:
        """Continue an encoded text token by token, feeding each chosen token back in with the language id `lang`
        (default: the text's)."""
        check_max_new_tokens(max_new_tokens)
        lang = self.check_lang(lang or encoded.lang)
        if len(encoded.input_ids) + max_new_tokens > self.max_positions:
            raise ValueError(f"the text and {max_new_tokens} new tokens do not fit in {self.max_positions} positions")
        generator = None if sampling.greedy else torch.Generator().manual_seed(sampling.resolved().seed)
        with self.session(encoded, reserve=max_new_tokens) as session:
            for _ in range(max_new_tokens):
                step = self.step(session, sampling, generator, top_k)
                yield step
                self.extend(session, [step.id], lang)

    def decode(self, ids: list[int], lang: str, literal: bool = False) -> str:
        """Readable text for ids fed to the model, start token left out; typed back, its specials are the same ids."""
        return self.tokenizer.decode(ids[1:] if ids[:1] == [START_ID] else ids, lang, literal=literal)

    @thread_scoped
    def step(
        self,
        session: Session,
        sampling: SamplingParams,
        generator: torch.Generator | None,
        top_k: int = 10,
    ) -> Step:
        """Choose the next token of a session (without appending it)."""
        logits = self.next_logits(session).float()
        langs = tuple(session.langs) if set(session.langs) != {session.lang} else ()
        now = Encoded(list(session.ids), session.lang, session.truncated, langs)
        logprobs, after = logits.log_softmax(-1), sampling_distribution(logits, sampling)
        distribution = self._distribution(logprobs, after, now, top_k, sampling)
        token_id = choose(after, generator)
        logprob = float(logprobs[token_id])
        rank = int((logits > logits[token_id]).sum()) + 1
        return Step(token_id, self.tokenizer.display(token_id), math.exp(logprob), logprob, rank, distribution)

    def distribution(
        self, logits: torch.Tensor, encoded: Encoded, top_k: int, sampling: SamplingParams
    ) -> Distribution:
        """The top candidates of (vocab,) logits, with entropy and the effect of the sampling settings."""
        logits = logits.float()
        return self._distribution(
            logits.log_softmax(-1), sampling_distribution(logits, sampling), encoded, top_k, sampling
        )

    def _distribution(
        self, logprobs: torch.Tensor, after: torch.Tensor, encoded: Encoded, top_k: int, sampling: SamplingParams
    ) -> Distribution:
        """A Distribution from (vocab,) log-probabilities and the sampling distribution already computed."""
        check_top_k(top_k)
        probs = logprobs.exp()
        entropy = float(-(probs * logprobs).nan_to_num().sum())
        kept = probs.masked_fill(after == 0, 0.0).sum()
        top = logprobs.topk(min(top_k, logprobs.shape[-1]))
        ranks = range(1, len(top.indices) + 1)
        candidates = [
            Candidate(
                id=token_id,
                token=self.tokenizer.display(token_id),
                piece=self.tokenizer.piece(token_id),
                prob=math.exp(logprob),
                logprob=logprob,
                rank=rank,
                sampling_prob=float(after[token_id]),
            )
            for rank, token_id, logprob in zip(ranks, top.indices.tolist(), top.values.tolist(), strict=True)
        ]
        return Distribution(
            encoded.input_ids, encoded.lang, entropy, candidates, float(kept), encoded.truncated, sampling
        )

    def _langs(self, lang: str, batch_size: int) -> torch.Tensor:
        """(B, 1) language ids, broadcast over every position."""
        return torch.full((batch_size, 1), self.lang2id[lang], device=self.device)

    def _lang_ids(self, rows: list[list[str]]) -> torch.Tensor:
        """(B, T) language ids of equally long rows of language codes."""
        return torch.tensor([[self.lang2id[lang] for lang in row] for row in rows], device=self.device)

    def _cached_last_logits(self, encodings: list[Encoded]) -> torch.Tensor:
        """(B, vocab) logits after each encoding's last token, each through the prefix cache."""
        rows = []
        for encoded in encodings:
            with self.session(encoded) as session:
                rows.append(self.next_logits(session))
        return torch.stack(rows)  # (B, V)

    def _last_logits(self, encodings: list[Encoded]) -> torch.Tensor:
        """(B, vocab) logits after each encoding's last token, right-padded into one batch."""
        lengths = [len(e.input_ids) for e in encodings]
        width = max(lengths)
        padded = [e.input_ids + [PAD_ID] * (width - len(e.input_ids)) for e in encodings]
        ids = torch.tensor(padded, device=self.device)  # (B, T)
        langs = self._lang_ids([e.position_langs + [e.lang] * (width - len(e.input_ids)) for e in encodings])  # (B, T)
        last = torch.tensor(lengths, device=self.device) - 1  # (B,)
        with torch.inference_mode():
            # Causal attention: padding on the right never reaches the real positions before it.
            hidden = self.model(ids, langs)  # (B, T, C)
            picked = hidden[torch.arange(len(encodings), device=self.device), last]  # (B, C)
            return self.model.logits(picked).float()  # (B, V)


def choose_products(model: XLM, products: str) -> str:
    """The float32 CPU product library for a model: as asked, or for "auto" the faster for one token here."""
    if products != "auto":
        return products

    def one_token() -> None:
        with torch.inference_mode():
            model.logits(model(torch.tensor([[START_ID]]), torch.tensor([[0]]))[:, -1])

    chosen, seconds = blas.faster_products(model, one_token)
    timings = ", ".join(f"{name} {value * 1e3:.1f} ms" for name, value in seconds.items())
    log.info("matrix products on %s, the faster for one token here (%s)", chosen, timings)
    return chosen


def padded_groups(lengths: list[int], budget: int = BATCH_TOKENS) -> list[list[int]]:
    """Indices grouped by length so that each group's padded size (count × longest) stays within the budget."""
    groups: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        if groups and (len(groups[-1]) + 1) * lengths[index] <= budget:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def check_top_k(k: int) -> int:
    """The number of candidates to list, if within 1-1000."""
    if not 1 <= k <= 1000:
        raise ValueError(f"top-k must be between 1 and 1000, got {k}")
    return k


def check_max_new_tokens(n: int) -> int:
    """The number of tokens to continue by, if within the cap."""
    if not 1 <= n <= MAX_NEW_TOKENS:
        raise ValueError(f"max new tokens must be between 1 and {MAX_NEW_TOKENS}, got {n}")
    return n


def kl_divergence(logp: torch.Tensor, logq: torch.Tensor) -> float:
    """KL(p || q) in nats from two (vocab,) log-distributions."""
    return float((logp.exp() * (logp - logq)).sum())


def resolve_device(device: str) -> torch.device:
    """ "auto" is CUDA when a GPU is present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"{device!r} is not a device (try auto, cpu or cuda)") from error
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("no CUDA GPU is available here; use --device cpu or auto")
    return target
