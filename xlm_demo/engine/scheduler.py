"""One loop owns the model: every session waiting to run joins the next batch, so the weights are read once per
batch, not once per event.

A caller hands in its job and waits on it alone; the scheduler's thread takes every job waiting (up to a token
budget), runs them as one packed forward pass, and hands each job its rows. Under load, the jobs that arrive while a
batch runs make the next batch; alone, a job runs at once. The thread starts with the first job and ends after a few
idle seconds, so an engine nobody uses holds no thread.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import torch

from ..model.xlm import XLM, Packed
from .forward import lang_ids

# New tokens one batch may run: a first view of a long text (up to 512) still shares a batch with many keystrokes.
BATCH_TOKENS = 1024
IDLE_SECONDS = 5.0  # the scheduler's thread ends after this long without a job
# Schedulers whose thread runs: stopped when the process exits, before the interpreter's finalization, which would
# otherwise end the process with "terminate called" while a thread waits inside torch's runtime.
RUNNING: weakref.WeakSet[Scheduler] = weakref.WeakSet()
# Whether the calling thread's work is still wanted (a page's newer request has not replaced it): asked when its job
# would join a batch, so that under overload only each page's latest text is run.
WANTED: ContextVar[Callable[[], bool]] = ContextVar("wanted", default=lambda: True)


class Superseded(Exception):
    """A job dropped before it ran: its caller said it was no longer wanted."""


@contextmanager
def wanted_while(still_wanted: Callable[[], bool]) -> Iterator[None]:
    """The model runs the calling thread's jobs only while `still_wanted()`; a job it no longer wants when a batch
    is made raises Superseded in the caller."""
    token = WANTED.set(still_wanted)
    try:
        yield
    finally:
        WANTED.reset(token)


@dataclass(eq=False)
class Job:
    """One caller's work: a session's pending tokens to run and, `score`, the logits of every position run but not
    yet scored."""

    session: Any  # a sessions.Session
    score: bool
    then: Callable[[list, list[torch.Tensor]], None] | None = None  # given the scored sessions and their logits
    result: torch.Tensor | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    wanted: Callable[[], bool] = field(default_factory=WANTED.get)  # the caller's, asked when a batch is made

    @property
    def tokens(self) -> int:
        return len(self.session.pending)


class Scheduler:
    """Batches every session waiting for the model into one forward pass, on a thread of its own."""

    def __init__(
        self,
        model: XLM,
        lang2id: dict[str, int],
        thread_scope: Callable[[], AbstractContextManager],
        batch_tokens: int = BATCH_TOKENS,
    ):
        self.model = model
        self.lang2id = lang2id
        self.thread_scope = thread_scope
        self.batch_tokens = batch_tokens
        self.arrived = threading.Condition()  # guards `waiting` and `thread`
        self.waiting: list[Job] = []
        self.thread: threading.Thread | None = None
        self.model_lock = threading.Lock()  # held by the scheduler's thread for a batch, or by hold()
        self.holder: threading.Thread | None = None  # the thread inside hold(), if any
        self.last_batch = 0  # jobs in the batch run last, for the page's "busy" line
        self.stopping = False  # the process exits: the thread ends at once

    @property
    def queued(self) -> int:
        """Jobs waiting for the next batch."""
        return len(self.waiting)

    def forward(self, sessions: list, score: bool, then: Callable | None = None) -> list[torch.Tensor | None]:
        """Run the sessions' pending tokens together, and with everyone else's; `score`: each session's (T, V) logits
        of every position run but not yet scored (its unscored hidden states, then the new ones), handed with those
        of every other session of the batch with the same `then` to `then(sessions, logits)`, once, before any
        caller of the batch goes on."""
        jobs = [Job(session=session, score=score, then=then) for session in sessions]
        if not jobs:
            return []
        if self.holder is threading.current_thread():  # inside hold(): run them alone, now
            self._run(jobs)
        else:
            with self.arrived:
                self.waiting.extend(jobs)
                if self.thread is None:
                    self.thread = threading.Thread(target=self._loop, name="xlm-demo-scheduler", daemon=True)
                    self.thread.start()
                    RUNNING.add(self)
                self.arrived.notify()
            for job in jobs:
                job.done.wait()
        for job in jobs:
            if job.error is not None:
                raise job.error
        return [job.result for job in jobs]

    @contextmanager
    def hold(self) -> Iterator[None]:
        """The model to the calling thread alone until the block ends, between batches: for work that runs it as
        it likes (the lens, attention, attribution, a padded batch). Sessions run inside the block run at once."""
        me = threading.current_thread()
        if self.holder is me:
            yield
            return
        with self.model_lock:
            self.holder = me
            try:
                yield
            finally:
                self.holder = None

    def _loop(self) -> None:
        """The thread's life, inside the thread scope throughout (not entered again per batch)."""
        with self.thread_scope():
            self._batches()

    def _batches(self) -> None:
        """Take what waits, run it as one batch, again; end after IDLE_SECONDS without a job."""
        while True:
            with self.arrived:
                if not self.waiting and not self.stopping:
                    self.arrived.wait(IDLE_SECONDS)
                if not self.waiting or self.stopping:
                    self.thread = None
                    return
            with self.model_lock:  # taken only once the model is free: what arrived meanwhile joins this batch
                with self.arrived:
                    batch = self._take()
                if batch:
                    self._run(batch)
            self.last_batch = len(batch)

    def stop(self) -> None:
        """End the scheduler's thread, once what it runs is done (the process exits)."""
        with self.arrived:
            self.stopping, thread = True, self.thread
            self.arrived.notify()
        if thread is not None:
            thread.join()

    def _take(self) -> list[Job]:
        """The waiting jobs still wanted that fit the token budget, oldest first (at least one, if any is wanted);
        those no longer wanted are ended with Superseded."""
        batch, tokens, kept = [], 0, []
        for job in self.waiting:
            if not job.wanted():
                job.error = Superseded("a newer request replaced this one")
                job.done.set()
            elif not batch or tokens + job.tokens <= self.batch_tokens:
                batch.append(job)
                tokens += job.tokens
            else:
                kept.append(job)
        self.waiting = kept
        return batch

    def _run(self, batch: list[Job]) -> None:
        """Run a batch, each job's result or error set, every job marked done."""
        try:
            with self.thread_scope(), torch.inference_mode():
                self._forward(batch)
        except BaseException as error:  # handed to the callers, each raising it in its own thread
            for job in batch:
                job.error = error
        for job in batch:
            job.done.set()

    def _forward(self, batch: list[Job]) -> None:
        """Every session's pending tokens in one packed pass, then one output projection for every row asked for."""
        for job in batch:
            session = job.session
            if session.cache.length + len(session.pending) > session.cache.capacity:
                job.error = ValueError(
                    f"the session holds {session.cache.capacity} positions; "
                    f"{session.cache.length + len(session.pending)} were asked for"
                )
        batch = [job for job in batch if job.error is None]
        running = [job.session for job in batch if job.session.pending]
        if running:
            device = self.model.tokens.weight.device
            ids = torch.tensor([i for s in running for i in s.pending], device=device)  # (N,)
            langs = lang_ids(self.lang2id, [[lang for s in running for lang in s.langs[s.cache.length :]]], device)
            packed = Packed([s.cache for s in running], [len(s.pending) for s in running])
            hidden = self.model.forward_packed(ids, langs[0], packed)  # (N, C)
            for session, rows in zip(running, hidden.split(packed.lengths), strict=True):
                session.unscored = rows if session.unscored is None else torch.cat([session.unscored, rows])
                session.pending = []
        scoring = [job for job in batch if job.score and job.session.unscored is not None]
        if scoring:
            rows = [job.session.unscored for job in scoring]
            logits = self.model.logits(torch.cat(rows)).float()  # (sum of T, V): row t predicts the token after it
            for job, part in zip(scoring, logits.split([len(r) for r in rows]), strict=True):
                job.result, job.session.unscored = part, None
            for then in dict.fromkeys(job.then for job in scoring if job.then):  # one call per receiver, in order
                own = [job for job in scoring if job.then == then]  # bound methods: equal, not the same
                then([job.session for job in own], [job.result for job in own])


@atexit.register
def stop_running() -> None:
    """Every scheduler's thread ended as the process exits."""
    for scheduler in list(RUNNING):
        scheduler.stop()
