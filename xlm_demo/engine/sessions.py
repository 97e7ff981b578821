"""Sessions: a growing token sequence and its KV cache, resumed from the prefix cache and kept in it as it runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from ..model.kv import Paged
from ..model.tokenizer import Tokenizer
from ..model.xlm import XLM
from .prefix_cache import Key, Match, PrefixCache
from .results import Encoded, TokenScore
from .scheduler import Scheduler
from .scoring import start_score, token_scores


@dataclass
class Session:
    """A growing token sequence and its KV cache, owned by one caller."""

    ids: list[int]
    lang: str  # the typed text's
    langs: list[str]  # each position's language id
    cache: Paged  # the cached prefix read where the prefix cache holds it, the rest its own
    keys: list[Key]  # the prefix cache's key of each position
    truncated: bool
    pending: list[int] = field(default_factory=list)  # ids not yet run through the model
    last_logits: torch.Tensor | None = None  # (vocab,) after the last fed token
    cached: Match = field(default_factory=lambda: Match([]))  # its prefix held (pinned) in the prefix cache
    scores: list[TokenScore] = field(default_factory=list)  # of its first positions, each given those before it
    unscored: torch.Tensor | None = None  # (T, C) last hidden states of the positions run but not yet scored


class Sessions:
    """Opens sessions on one model and prefix cache, and runs and scores what each has not yet seen."""

    def __init__(
        self,
        model: XLM,
        tokenizer: Tokenizer,
        lang2id: dict[str, int],
        prefix_cache: PrefixCache,
        scheduler: Scheduler,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.lang2id = lang2id
        self.prefix_cache = prefix_cache
        self.scheduler = scheduler  # runs every session's new tokens, batched with other sessions'

    @contextmanager
    def open(self, encoded: Encoded, reserve: int = 0) -> Iterator[Session]:
        """A session holding an encoded text, with room for `reserve` more tokens, resumed from the prefix cache;
        when the block ends, the prefix cache may evict what the session held."""
        session = self._start(encoded, reserve)
        try:
            yield session
        finally:
            self.prefix_cache.release(session.cached)

    def _start(self, encoded: Encoded, reserve: int) -> Session:
        """A session holding an encoded text, with room for `reserve` more tokens, resumed from the prefix cache."""
        keys = self.keys(encoded.input_ids, encoded.position_langs)
        match = self.prefix_cache.match_prefix(keys)
        last_logits = self.prefix_cache.last_logits(match)
        # The logits after the last cached position score the first new one: kept, or run that position again.
        start = len(match) - (0 if last_logits is not None or not match.nodes else 1)
        capacity = min(self.model.config.max_positions, len(encoded.input_ids) + reserve)
        own = self.model.new_cache(1, max(1, capacity - start))  # the positions the prefix cache does not hold
        session = Session(
            ids=list(encoded.input_ids),
            lang=encoded.lang,
            langs=encoded.position_langs,
            cache=self.prefix_cache.context(match, start, own),
            keys=keys,
            truncated=encoded.truncated,
            pending=list(encoded.input_ids[start:]),
            last_logits=last_logits,
            cached=match,
            scores=[node.score for node in match.nodes],
        )
        return session

    def extend(
        self, session: Session, ids: list[int], lang: str | None = None, scores: list[TokenScore] | None = None
    ) -> None:
        """Append tokens fed with `lang` (default: the text's); the model reads them when next asked. `scores`: theirs,
        where known (a continuation's token, scored from the distribution it was chosen from), if every position
        before them is scored."""
        if scores is not None and len(session.scores) == len(session.ids):
            session.scores.extend(scores)
        langs = [lang or session.lang] * len(ids)
        session.ids.extend(ids)
        session.langs.extend(langs)
        session.keys.extend(self.keys(ids, langs))
        session.pending.extend(ids)

    def keys(self, ids: list[int], langs: list[str]) -> list[Key]:
        """The prefix cache's key of each position: its language id and token id."""
        return [(self.lang2id[lang], token_id) for lang, token_id in zip(langs, ids, strict=True)]

    def next_logits(self, *sessions: Session) -> list[torch.Tensor]:
        """(vocab,) logits after everything in each session, running (in one batch) and scoring only the tokens not
        yet seen."""
        self.scheduler.forward([s for s in sessions if s.pending or s.unscored is not None], True, self._score_runs)
        return [session.last_logits for session in sessions]

    def run_pending(self, *sessions: Session) -> None:
        """Run the tokens not yet seen through the model, in one batch; their scores wait for next_logits (the output
        projection of every position, as costly as the blocks for a long text)."""
        self.scheduler.forward([s for s in sessions if s.pending], score=False)

    def _score_runs(self, sessions: list[Session], logits: list[torch.Tensor]) -> None:
        """Score the positions each session ran last from their (T, V) logits, every session's in one set of passes
        over the vocabulary (in the scheduler's thread, as its batch ends), and keep them in the prefix cache."""
        unscored = [self._unscored(session, rows) for session, rows in zip(sessions, logits, strict=True)]
        targets = [token_id for _, ids in unscored for token_id in ids]
        stacked = torch.cat([rows for rows, _ in unscored])  # (N, V)
        scored = token_scores(self.tokenizer, stacked, targets, first=False) if targets else []  # none: Continue
        for session, rows, (_, ids) in zip(sessions, logits, unscored, strict=True):
            if not session.scores:
                session.scores.append(start_score(self.tokenizer))
            session.scores += scored[: len(ids)]
            scored = scored[len(ids) :]
            session.last_logits = rows[-1]
            cached = self.prefix_cache.insert(session.cached, session.keys, session.cache, session.scores, rows[-1])
            session.cached = cached  # the prefix cache now holds these positions too, pinned for this session

    @staticmethod
    def _unscored(session: Session, logits: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """The (N, V) rows that score a session's positions not yet scored, from the logits of the positions it ran
        last, and those positions' ids (the start token's, scored by nothing, left out)."""
        start = session.cache.length - logits.shape[0]
        if session.last_logits is not None and start == len(session.scores):
            logits = torch.cat([session.last_logits[None], logits])  # the cached position's row first
        ids = session.ids[len(session.scores) :]
        return logits[:-1], ids[1:] if not session.scores else ids
