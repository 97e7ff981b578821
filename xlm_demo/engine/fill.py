"""Fill the blank: words for the one <special1> in a text, ranked by the causal model's probability of the whole
filled text, log p(candidate | left) + log p(right | left, candidate), as a cloze is scored with a causal LM.

The words come from the left context: its most probable next tokens, each extended to a whole word by a small beam.
The left context runs once (through the prefix cache); every candidate and the right context after it run in
batches against its keys and values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import ExitStack, nullcontext

import torch

from ..model.kv import Paged
from ..model.tokenizer import N_SPECIAL, Tokenizer
from ..model.xlm import XLM, KVCache
from .forward import Hold, continuation_logprobs, next_logprobs
from .results import Encoded, Fill, FillCandidate
from .sampling import SamplingParams
from .scoring import distribution
from .sessions import Sessions

MASK_ID = 5  # <special1>: XLM's mask token, and what the hub's Fill-Mask widget asks this model to fill
MASK = "<special1>"
# The left context's next tokens made into words and scored with the whole text: shared among the language ids
# ranked together (25 each for two), so that about as many words are scored under each id, however many ids.
PROPOSALS = 50
BEAM = 3  # open word beginnings kept per proposal while it is extended to a word's end
MAX_PIECES = 4  # a proposed word's pieces at most; a beginning not ended by then is dropped
MAX_GIVEN = 20  # words a person may add
MAX_GIVEN_TOKENS = 16  # tokens of one added word (or phrase)
# Positions one fill may score, over every language id: about 30 s of the real model on 2 CPU cores (50 candidates
# through 13 positions each take 1.6 s there), so that no request holds the model much longer.
MAX_SCORED_POSITIONS = 12_000


def blank_index(ids: Sequence[int]) -> int:
    """Where the one blank is among the ids; none or several is a ValueError."""
    count = list(ids).count(MASK_ID)
    if count == 0:
        raise ValueError(f"The text has no blank: write {MASK} where a word is missing.")
    if count > 1:
        raise ValueError(f"The text has {count} blanks ({MASK}); write only one, the word to fill.")
    return list(ids).index(MASK_ID)


def check_fill_top_k(k: int) -> int:
    """The number of candidates to list, if within 1 to PROPOSALS."""
    if not 1 <= k <= PROPOSALS:
        raise ValueError(f"top-k must be between 1 and {PROPOSALS} to fill a blank, got {k}")
    return k


def split_words(words: str | None) -> list[str]:
    """ "Paris, New York," as ["Paris", "New York"]: a person's own words, comma-separated."""
    return [word.strip() for word in (words or "").split(",") if word.strip()]


def given_ids(tokenizer: Tokenizer, words: Sequence[str], lang: str) -> list[tuple[int, ...]]:
    """Each word's tokens under the language's rules (specials in it are plain characters), checked."""
    if len(words) > MAX_GIVEN:
        raise ValueError(f"Give at most {MAX_GIVEN} words of your own; {len(words)} were given.")
    found = []
    for word in words:
        ids = tuple(tokenizer.encode(word, lang, literal=True))
        if not ids:
            raise ValueError(f"The word {word!r} has no tokens to fill the blank with.")
        if len(ids) > MAX_GIVEN_TOKENS:
            raise ValueError(f"The word {word[:40]!r} is {len(ids)} tokens; one to fill a blank is at most "
                             f"{MAX_GIVEN_TOKENS}.")  # fmt: skip
        found.append(ids)
    return found


def fill_blanks(
    sessions: Sessions,
    encodings: list[Encoded],
    given: dict[str, list[tuple[int, ...]]],
    top_k: int,
    budget: int,
) -> dict[str, Fill]:
    """The blank of each encoding (one per language id) filled: every id's proposals (PROPOSALS among them, top_k
    each at least) and given words, each scored under every id, so that the rankings compare; `budget` bounds the
    cached positions of one scoring batch."""
    model, tokenizer, hold = sessions.model, sessions.tokenizer, sessions.scheduler.hold
    n = max(top_k, PROPOSALS // len(encodings))
    with ExitStack() as held:
        lefts = []  # (the whole encoding, its left context, the left context's session and next-token logits)
        for encoded in encodings:
            left = Encoded(encoded.input_ids[: blank_index(encoded.input_ids)], encoded.lang, encoded.truncated)
            session = held.enter_context(sessions.open(left, reserve=1))  # reserve: its keys and values loaded
            lefts.append((encoded, left, session, sessions.next_logits(session)[0]))
        proposed = [
            ids
            for encoded, _, session, logits in lefts
            for ids in propose(model, tokenizer, session.cache, logits, sessions.lang2id[encoded.lang], n, hold)
        ]
        candidates = list(dict.fromkeys([ids for ids_of in given.values() for ids in ids_of] + proposed))
        check_work(candidates, [len(encoded.input_ids) - len(left.input_ids) - 1 for encoded, left, _, _ in lefts])
        fills = {}
        for encoded, left, session, logits in lefts:
            lang, blank = encoded.lang, len(left.input_ids)
            right = encoded.input_ids[blank + 1 :]
            scores = score(model, session.cache, logits, candidates, right, sessions.lang2id[lang], budget, hold)
            left_total = sum(token.logprob for token in session.scores[1:])
            listed = ranked(tokenizer, lang, candidates, scores, left_total, set(given[lang]), top_k)
            alone = distribution(tokenizer, logits, left, top_k, SamplingParams())
            fills[lang] = Fill(encoded.input_ids, lang, blank, listed, alone, len(candidates), encoded.truncated)
        return fills


def check_work(candidates: list[tuple[int, ...]], after_blank: list[int]) -> None:
    """Refuse, in a sentence, a fill that would score more than MAX_SCORED_POSITIONS positions."""
    positions = sum(len(candidate) + after for after in after_blank for candidate in candidates)
    if positions > MAX_SCORED_POSITIONS:
        raise ValueError(
            f"The blank has {max(after_blank)} tokens after it: {len(candidates)} candidates scored through them "
            f"under {len(after_blank)} language id(s) are {positions:,} positions, over this demo's limit of "
            f"{MAX_SCORED_POSITIONS:,}. Shorten the text after the blank."
        )


def propose(
    model: XLM,
    tokenizer: Tokenizer,
    prefix: KVCache | Paged,
    left_logits: torch.Tensor,
    lang_id: int,
    n: int = PROPOSALS,
    hold: Hold = nullcontext,
) -> list[tuple[int, ...]]:
    """The left context's n most probable next tokens (specials left out), each made a whole word: a token that ends
    a word is one; one that does not is extended by a beam of BEAM to the most probable word end within MAX_PIECES
    pieces. In the order of their first tokens."""
    top = left_logits.float().log_softmax(-1)[N_SPECIAL:].topk(n)  # specials left out: ids from N_SPECIAL on
    words: dict[int, tuple[tuple[int, ...], float]] = {}  # first token's rank -> (ids, log p) of its best word
    beams = []  # (first token's rank, ids so far, log p)
    for rank, (token_id, logprob) in enumerate(
        zip((top.indices + N_SPECIAL).tolist(), top.values.tolist(), strict=True)
    ):
        if tokenizer.ends_word(token_id):
            words[rank] = ((token_id,), logprob)
        else:
            beams.append((rank, (token_id,), logprob))
    for _ in range(MAX_PIECES - 1):
        if not beams:
            break
        following = next_logprobs(model, prefix, [list(ids) for _, ids, _ in beams], lang_id, hold)  # (B, V)
        best = following[:, N_SPECIAL:].topk(BEAM)
        options: dict[int, list[tuple[tuple[int, ...], float]]] = {}
        for (rank, ids, logprob), next_ids, more_logprobs in zip(
            beams, (best.indices + N_SPECIAL).tolist(), best.values.tolist(), strict=True
        ):
            for token_id, more in zip(next_ids, more_logprobs, strict=True):
                options.setdefault(rank, []).append(((*ids, token_id), logprob + more))
        beams = []
        for rank, extended in options.items():
            for ids, logprob in extended:
                if tokenizer.ends_word(ids[-1]) and logprob > words.get(rank, ((), -math.inf))[1]:
                    words[rank] = (ids, logprob)
            open_ = sorted((o for o in extended if not tokenizer.ends_word(o[0][-1])), key=lambda o: -o[1])[:BEAM]
            # Extending only lowers log p: a beginning below the best word already ended cannot win.
            ended = words.get(rank, ((), -math.inf))[1]
            beams += [(rank, ids, logprob) for ids, logprob in open_ if logprob > ended]
    return [words[rank][0] for rank in sorted(words)]


def score(
    model: XLM,
    prefix: KVCache | Paged,
    left_logits: torch.Tensor,
    candidates: list[tuple[int, ...]],
    right: list[int],
    lang_id: int,
    budget: int,
    hold: Hold = nullcontext,
) -> list[tuple[float, float]]:
    """(log p(candidate | left), log p(candidate, right | left)) for each candidate in the blank, the left context's
    keys and values in `prefix` and its next-token logits `left_logits`."""
    suffixes = [[*candidate, *right] for candidate in candidates]
    logprobs = continuation_logprobs(model, prefix, left_logits, suffixes, lang_id, budget, hold)
    return [
        (float(row[: len(candidate)].double().sum()), float(row.double().sum()))
        for candidate, row in zip(candidates, logprobs, strict=True)
    ]


def ranked(
    tokenizer: Tokenizer,
    lang: str,
    candidates: list[tuple[int, ...]],
    scores: list[tuple[float, float]],
    left_total: float,
    given: set[tuple[int, ...]],
    top_k: int,
) -> list[FillCandidate]:
    """The top_k candidates by log p of the whole filled text, and every given one, most probable first; `prob` is
    normalised over those listed."""
    totals = [left_total + whole for _, whole in scores]
    order = sorted(range(len(candidates)), key=lambda i: -totals[i])
    listed = order[:top_k] + [i for i in order[top_k:] if candidates[i] in given]
    norm = torch.logsumexp(torch.tensor([totals[i] for i in listed], dtype=torch.float64), 0).item()
    return [
        FillCandidate(
            text=tokenizer.decode(list(candidates[i]), lang),
            ids=candidates[i],
            logprob=totals[i],
            prob=math.exp(totals[i] - norm),
            left_logprob=scores[i][0],
            given=candidates[i] in given,
        )
        for i in listed
    ]
