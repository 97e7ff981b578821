"""The one object the CLI, the API and the UI call: distributions, scores, continuations, comparisons."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import replace
from functools import cached_property

import torch
from torch import nn

from ..model import blas
from ..model.checkpoint import Checkpoint, load_checkpoint, load_default_checkpoint
from ..model.languages import listing
from ..model.subwords import subword_masks
from ..model.tokenizer import Tokenizer
from ..model.xlm import XLM
from . import comparison, fill, scoring
from .forward import last_logits, padded_groups
from .loading import load_model, load_tokenizer
from .prefix_cache import KVPool, PrefixCache
from .results import START_ID, Analysis, Comparison, Distribution, Encoded, Fill, Step, TokenScore
from .sampling import GREEDY, SamplingParams
from .scheduler import Scheduler
from .sessions import Session, Sessions

log = logging.getLogger("xlm_demo")

MAX_NEW_TOKENS = 256
# Keys and values of prefixes already run, shared by every session: 2,730 positions of the real model (48 KB
# each), 16,000 of the bundled one.
PREFIX_CACHE_BYTES = 128 << 20
# Texts whose ids are kept: Step, pick and Undo read the text the last keystroke tokenized (4 ms at 300 words).
RECENT_TEXTS = 16
# Keys and values of one batch of filled texts: 2,730 positions of the real model, 50 texts of 54 tokens.
FILL_BATCH_BYTES = 128 << 20


def check_max_new_tokens(n: int) -> int:
    """The number of tokens to continue by, if within the cap."""
    if not 1 <= n <= MAX_NEW_TOKENS:
        raise ValueError(f"max new tokens must be between 1 and {MAX_NEW_TOKENS}, got {n}")
    return n


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
        self.scheduler = Scheduler(model, lang2id, self.thread_scope)
        self.sessions = Sessions(model, tokenizer, lang2id, self.prefix_cache, self.scheduler)
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
        prefix_cache_bytes: int = PREFIX_CACHE_BYTES,
    ) -> Engine:
        """Read a checkpoint (None: the real one, else the bundled one) and place it on a device."""
        checkpoint, notice = (load_checkpoint(ref), None) if ref else load_default_checkpoint()
        return cls.from_checkpoint(
            checkpoint,
            device=device,
            dtype=dtype,
            notice=notice,
            quantize=quantize,
            products=products,
            prefix_cache_bytes=prefix_cache_bytes,
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
        model = load_model(checkpoint, device, dtype, quantize, products)
        return cls(
            model,
            load_tokenizer(checkpoint),
            checkpoint.lang2id,
            checkpoint.source,
            notice,
            quantized=quantize != "none",
            prefix_cache_bytes=prefix_cache_bytes,
        )

    @property
    def device(self) -> torch.device:
        return self.model.tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The activations' and the KV cache's dtype."""
        return self.model.dtype

    @property
    def weights_dtypes(self) -> set[torch.dtype]:
        """The dtypes every linear layer's float weight and the token embeddings are stored in (bfloat16 on the
        CPU: float32 activations): one, unless a precision reached only some of them."""
        linears = [module.weight for module in self.model.modules() if isinstance(module, nn.Linear)]
        return {weight.dtype for weight in [*linears, self.model.tokens.weight]}

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

    def decode(self, ids: list[int], lang: str, literal: bool = False) -> str:
        """Readable text for ids fed to the model, start token left out; typed back, its specials are the same ids."""
        return self.tokenizer.decode(ids[1:] if ids[:1] == [START_ID] else ids, lang, literal=literal)

    def predict(self, text: str, lang: str, top_k: int = 10, sampling: SamplingParams | None = None) -> Distribution:
        """The next-token distribution after a text."""
        return self.predict_encoded(self.encode(text, lang), top_k, sampling)

    def predict_encoded(
        self, encoded: Encoded, top_k: int = 10, sampling: SamplingParams | None = None
    ) -> Distribution:
        """The next-token distribution after an encoding, through the prefix cache, batched with other callers'."""
        return self.analyse(encoded, top_k, sampling).next_token

    def holding_model(self) -> AbstractContextManager[None]:
        """The model to the calling thread alone until the block ends (other callers' batches wait)."""
        return self.scheduler.hold()

    @thread_scoped
    def predict_many(self, requests: list[tuple[Encoded, int]]) -> list[Distribution]:
        """Next-token distributions for several (encoding, top_k) requests, in padded batches of similar length."""
        encodings = [encoded for encoded, _ in requests]
        rows: dict[int, torch.Tensor] = {}  # request index -> (vocab,) logits
        for group in padded_groups([len(e.input_ids) for e in encodings]):
            with self.holding_model():
                logits = last_logits(self.model, self.lang2id, [encodings[i] for i in group])  # (len(group), V)
            rows.update(zip(group, logits, strict=True))
        return [
            self.distribution(rows[index], encoded, top_k, SamplingParams())
            for index, (encoded, top_k) in enumerate(requests)
        ]

    def distribution(
        self, logits: torch.Tensor, encoded: Encoded, top_k: int, sampling: SamplingParams
    ) -> Distribution:
        """The top candidates of (vocab,) logits, with entropy and the effect of the sampling settings."""
        return scoring.distribution(self.tokenizer, logits, encoded, top_k, sampling)

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

    def session(self, encoded: Encoded, reserve: int = 0) -> AbstractContextManager[Session]:
        """A session holding an encoded text, with room for `reserve` more tokens, resumed from the prefix cache;
        when the block ends, the prefix cache may evict what the session held."""
        return self.sessions.open(encoded, reserve)

    def extend(self, session: Session, ids: list[int], lang: str | None = None) -> None:
        """Append tokens fed with `lang` (default: the text's); the model reads them when next asked."""
        self.sessions.extend(session, ids, lang)

    @thread_scoped
    def next_logits(self, session: Session) -> torch.Tensor:
        """(vocab,) logits after everything in the session, running and scoring only the tokens not yet seen."""
        return self.sessions.next_logits(session)[0]

    @thread_scoped
    def next_logits_together(self, sessions: list[Session]) -> list[torch.Tensor]:
        """next_logits of several sessions, their new tokens run in one batch."""
        return self.sessions.next_logits(*sessions)

    @thread_scoped
    def run_pending(self, *sessions: Session) -> None:
        """Run the sessions' tokens not yet seen through the model, in one batch; their scores wait for next_logits."""
        self.sessions.run_pending(*sessions)

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
                step, score = self._step(session, sampling, generator, top_k)
                yield step
                self.sessions.extend(session, [step.id], lang, scores=[score])  # scored as it was chosen

    def step(
        self,
        session: Session,
        sampling: SamplingParams,
        generator: torch.Generator | None,
        top_k: int = 10,
    ) -> Step:
        """Choose the next token of a session (without appending it)."""
        return self._step(session, sampling, generator, top_k)[0]

    @thread_scoped
    def _step(
        self, session: Session, sampling: SamplingParams, generator: torch.Generator | None, top_k: int
    ) -> tuple[Step, TokenScore]:
        """The next token of a session, chosen, and its score where it stands (the session's next position's)."""
        logits = self.next_logits(session)
        langs = tuple(session.langs) if set(session.langs) != {session.lang} else ()
        now = Encoded(list(session.ids), session.lang, session.truncated, langs)
        summary = scoring.summarise(self.tokenizer, logits, now, top_k, sampling)
        score = summary.token_score(self.tokenizer, summary.choose(generator))
        return Step(score.id, score.token, score.prob, score.logprob, score.rank, summary.distribution), score

    def compare(self, text: str, top_k: int = 10) -> Comparison:
        """The next-token distributions under every language id, in one batched forward."""
        return self.compare_encoded([self.encode(text, lang) for lang in self.lang2id], top_k)

    @thread_scoped
    def compare_encoded(self, encodings: list[Encoded], top_k: int = 10, cached: bool = False) -> Comparison:
        """The next-token distribution of each encoding (one per language id), in one batched forward; or, `cached`,
        each through the prefix cache, as the page's Compare: what the page showed runs no more, and what runs is
        kept (scored, for the next view of it)."""
        if cached:
            logits = self._cached_last_logits(encodings)
        else:
            with self.holding_model():
                logits = last_logits(self.model, self.lang2id, encodings)
        return comparison.comparison(self.tokenizer, logits, encodings, top_k, self.subword_masks)

    def _cached_last_logits(self, encodings: list[Encoded]) -> torch.Tensor:
        """(B, vocab) logits after each encoding's last token, each through the prefix cache, in one batch."""
        with ExitStack() as held:
            sessions = [held.enter_context(self.session(encoded)) for encoded in encodings]
            return torch.stack(self.sessions.next_logits(*sessions))  # (B, V)

    def encode_blank(self, text: str, lang: str, reserve: int = 0) -> Encoded:
        """The text with its one blank (<special1>) as id 5, keeping the last tokens that fit with `reserve` more."""
        ids = self._token_ids(text, self.check_lang(lang), False)
        fill.blank_index(ids)
        encoded = self.fit(list(ids), lang, reserve)
        if fill.MASK_ID not in encoded.input_ids:
            raise ValueError(f"The blank is too far from the text's end: the model reads its last "
                             f"{len(encoded.input_ids) - 1} tokens here. Shorten the text after it.")  # fmt: skip
        return encoded

    def fill(self, text: str, lang: str, top_k: int = 10, words: Sequence[str] = ()) -> Fill:
        """Candidates for the text's one blank under one language id, ranked by the whole filled text."""
        return self.fill_languages(text, [lang], top_k, words)[lang]

    @thread_scoped
    def fill_languages(
        self, text: str, langs: Sequence[str], top_k: int = 10, words: Sequence[str] = ()
    ) -> dict[str, Fill]:
        """The blank filled under each language id: every id's proposals and the given words, each scored under
        every id, so that the rankings compare; the left context runs once per id, through the prefix cache."""
        fill.check_fill_top_k(top_k)
        given = {lang: fill.given_ids(self.tokenizer, words, self.check_lang(lang)) for lang in langs}
        reserve = max([fill.MAX_PIECES, *(len(ids) for ids_of in given.values() for ids in ids_of)]) - 1
        encodings = [self.encode_blank(text, lang, reserve) for lang in langs]
        budget = FILL_BATCH_BYTES // KVPool.bytes_per_position(self.model.config, self.dtype)
        return fill.fill_blanks(self.sessions, encodings, given, top_k, budget)

    @thread_scoped
    def hub_widget_fill(self, text: str, top_k: int = 5) -> Distribution:
        """What the hub's Fill-Mask widget answers for a text with one blank: transformers' fill-mask pipeline on
        this checkpoint (lowercased, English rules, <s> … </s>, no language id, attention both ways), read at the
        blank's own position, where a causal model predicts the token after it. For the fidelity view only."""
        encoded = comparison.defaults_encoding(self.lowercasing_tokenizer, text, "", self.max_positions)
        blank = fill.blank_index(encoded.input_ids)
        with self.holding_model():
            logits = comparison.bidirectional_logits(self.model, encoded, None, position=blank)
        return self.distribution(logits, encoded, top_k, SamplingParams())

    @cached_property
    def subword_masks(self) -> dict[str, torch.Tensor]:
        """Which vocabulary units make words of one language only, or of several (from assets/word-lists)."""
        return subword_masks(self.tokenizer, tuple(self.lang2id))

    @cached_property
    def lowercasing_tokenizer(self) -> Tokenizer:
        """The same vocabulary and BPE with the hub config's lowercasing, for the fidelity view only."""
        return comparison.lowercasing_tokenizer(self.tokenizer)

    @thread_scoped
    def transformers_defaults(self, text: str, lang: str, top_k: int = 10) -> Distribution:
        """What the model card's recipe gets: lowercased, English Moses rules, <s> … </s>, bidirectional attention.

        Only for showing why the demo does otherwise; every choice here is one docs/fidelity.md calls wrong.
        """
        encoded = comparison.defaults_encoding(
            self.lowercasing_tokenizer, text, self.check_lang(lang), self.max_positions
        )
        with self.holding_model():
            logits = comparison.bidirectional_logits(self.model, encoded, self.lang2id[lang])
        return self.distribution(logits, encoded, top_k, SamplingParams())
