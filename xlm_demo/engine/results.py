"""What the engine is fed and answers with: encodings, distributions, scores, steps, comparisons."""

from __future__ import annotations

from dataclasses import dataclass

from .sampling import GREEDY, SamplingParams

START_ID = 1  # </s>: XLM's streams and sentences begin with it; <s> (0) never appears in training
BOS_ID = 0  # <s>: what transformers' encode() puts first
PAD_ID = 2


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
    entropy: float | None = None  # nats: of the distribution the token was read from (None for the start token)


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


@dataclass(frozen=True)
class FillCandidate:
    """One way to fill a blank, and how probable the whole text is with it there."""

    text: str
    ids: tuple[int, ...]  # the tokens in the blank
    logprob: float  # log p of the whole filled text: every token after the start token
    prob: float  # normalised over the candidates listed
    left_logprob: float  # log p(its tokens | the left context alone)
    given: bool  # a word a person gave, listed however it ranks


@dataclass(frozen=True)
class Fill:
    """A text's blank filled under one language id: the candidates, and what the left context alone predicts."""

    input_ids: list[int]  # as fed: the start token, the text's tokens, <special1> in the blank
    lang: str
    blank: int  # the blank's index in input_ids
    candidates: list[FillCandidate]  # most probable whole text first
    next_token: Distribution  # the left context's next token: what it ranks without the right context
    scored: int  # candidates scored with the whole text (every language id's proposals and the given words)
    truncated: bool = False
