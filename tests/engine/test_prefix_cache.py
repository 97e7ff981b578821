"""The prefix cache: its tree and pool alone, then the engine with it against the engine without it."""

import threading

import pytest
import torch

from tests.reference import reference_logits
from xlm_demo.engine import Engine
from xlm_demo.engine.prefix_cache import PrefixCache
from xlm_demo.engine.sampling import GREEDY
from xlm_demo.model.xlm import KVCache, XLMConfig

SMALL = XLMConfig(vocab_size=50, dim=8, n_layers=2, n_heads=2, max_positions=32)
PER_POSITION = 2 * SMALL.n_layers * SMALL.dim * 4  # float32 keys and values of every layer


def session_cache(keys: list[tuple[int, int]]) -> KVCache:
    """A session cache whose every stored number encodes its position's token, so a mix-up shows."""
    cache = KVCache(SMALL, 1, len(keys), dtype=torch.float32, device="cpu")
    for position, (_, token) in enumerate(keys):
        cache.keys[:, :, :, position] = token
        cache.values[:, :, :, position] = -token
    cache.length = len(keys)
    return cache


def put(cache: PrefixCache, keys: list[tuple[int, int]]) -> None:
    """Insert a whole key sequence, as an engine does after running it, and release it."""
    match = cache.match_prefix(keys)
    cache.release(cache.insert(match, keys, session_cache(keys), [f"s{k}" for k in keys]))


def cached_length(cache: PrefixCache, keys: list[tuple[int, int]]) -> int:
    """How much of a key sequence is cached (looked up and released again)."""
    match = cache.match_prefix(keys)
    cache.release(match)
    return len(match)


def en(*tokens: int) -> list[tuple[int, int]]:
    return [(1, token) for token in tokens]


def test_match_finds_the_longest_cached_prefix_and_reads_its_keys_and_values():
    cache = PrefixCache(SMALL, 100 * PER_POSITION, torch.float32, "cpu")
    put(cache, en(1, 5, 6, 7))
    match = cache.match_prefix(en(1, 5, 9))
    assert [node.key for node in match.nodes] == en(1, 5)
    assert [node.score for node in match.nodes] == ["s(1, 1)", "s(1, 5)"]
    context = cache.context(match, 2, KVCache(SMALL, 1, 1, dtype=torch.float32, device="cpu"))
    assert context.length == 2
    keys, values = context.span(0, 2)  # (L, 2, H, D), read from the pool's slots
    assert keys[:, 1].eq(5).all() and values[:, 0].eq(-1).all()
    cache.release(match)


def test_keys_and_values_come_back_in_order_from_consecutive_and_from_scattered_slots():
    cache = PrefixCache(SMALL, 24 * PER_POSITION, torch.float32, "cpu")
    for token in range(20, 36):  # sixteen one-position texts in slots 0-15
        put(cache, en(token))
    for token in range(20, 36, 2):
        cached_length(cache, en(token))  # every other one used again: the others go first
    long = en(*range(1, 17))  # eight free slots in a row, then the eight evicted ones, one apart
    put(cache, long)
    match = cache.match_prefix(long)
    slots = [node.slot for node in match.nodes]
    assert len(match) == 16 and slots != list(range(slots[0], slots[0] + 16))  # not one run of slots
    for n_positions in (8, 16):
        context = cache.context(match, n_positions, KVCache(SMALL, 1, 1, dtype=torch.float32, device="cpu"))
        assert context.length == n_positions
        keys, values = context.span(0, n_positions)  # (L, n, H, D)
        assert [int(keys[0, p, 0, 0]) for p in range(n_positions)] == list(range(1, n_positions + 1))
        assert values.eq(-torch.arange(1.0, n_positions + 1)[:, None, None]).all()
    cache.release(match)
    survivors = [token for token in range(20, 36, 2) if cached_length(cache, en(token))]
    assert survivors == list(range(20, 36, 2))  # the slots of the texts kept were not written over


def test_the_language_id_of_every_position_is_part_of_the_key():
    cache = PrefixCache(SMALL, 100 * PER_POSITION, torch.float32, "cpu")
    put(cache, en(1, 5, 6))
    german = [(0, 1), (0, 5), (0, 6)]
    assert cached_length(cache, german) == 0
    assert cached_length(cache, [(1, 1), (0, 5)]) == 1


def test_the_byte_budget_holds_and_the_least_recently_used_go_first():
    cache = PrefixCache(SMALL, 6 * PER_POSITION, torch.float32, "cpu")
    put(cache, en(1, 2, 3))
    put(cache, en(1, 4, 5))  # shares the start token: 5 positions in all
    cached_length(cache, en(1, 2, 3))  # looked up: now the most recently used
    put(cache, en(1, 6, 7))  # needs 2, 1 is free: evicts 5, the least recently used leaf, and no more
    assert cache.positions == cache.capacity == 6
    assert cached_length(cache, en(1, 2, 3)) == 3
    assert cached_length(cache, en(1, 4, 5)) == 2
    assert cached_length(cache, en(1, 6, 7)) == 3


def test_pinned_positions_are_never_evicted():
    cache = PrefixCache(SMALL, 3 * PER_POSITION, torch.float32, "cpu")
    put(cache, en(1, 2, 3))
    held = cache.match_prefix(en(1, 2, 3))
    put(cache, en(1, 4, 5))  # no room without evicting what is held: cached only as far as it fits
    assert cached_length(cache, en(1, 2, 3)) == 3
    assert cached_length(cache, en(1, 4, 5)) == 1
    cache.release(held)
    put(cache, en(1, 4, 5))
    assert cached_length(cache, en(1, 4, 5)) == 3


class WalkingCache(PrefixCache):
    """The eviction rule stated plainly: every unpinned leaf of the whole tree, least recently used first."""

    def _evict_locked(self, n_positions: int) -> int:
        freed = 0
        while freed < n_positions:
            leaves = [node for node in self._nodes() if self._evictable(node)]
            if not leaves:
                break
            leaf = min(leaves, key=lambda node: node.last_used)
            del leaf.parent.children[leaf.key]
            self.pool.free.append(leaf.slot)
            freed += 1
        return freed


def held(cache: PrefixCache) -> set[tuple]:
    """Every cached key sequence, as paths from the root."""
    paths, stack = set(), [(node, (node.key,)) for node in cache.root.children.values()]
    while stack:
        node, path = stack.pop()
        paths.add(path)
        stack.extend((child, (*path, child.key)) for child in node.children.values())
    return paths


def test_eviction_takes_the_leaves_the_plain_rule_takes():
    """Texts typed, looked up and held in turns under a small budget: the same positions stay as when every
    eviction walks the whole tree."""
    generator = torch.Generator().manual_seed(3)
    ours, plain = (
        PrefixCache(SMALL, 40 * PER_POSITION, torch.float32, "cpu"),
        WalkingCache(SMALL, 40 * PER_POSITION, torch.float32, "cpu"),
    )
    texts = [
        en(1, *torch.randint(2, 9, (int(n),), generator=generator).tolist())
        for n in torch.randint(1, 12, (300,), generator=generator)
    ]
    for step, keys in enumerate(texts):
        pinned = [cache.match_prefix(texts[step // 2]) for cache in (ours, plain)] if step % 7 == 0 else []
        for cache in (ours, plain):
            put(cache, keys) if step % 3 else cached_length(cache, keys)
        for cache, match in zip((ours, plain)[: len(pinned)], pinned, strict=True):
            cache.release(match)
        assert held(ours) == held(plain), step
    assert ours.positions == ours.capacity


def test_concurrent_sessions_sharing_a_prefix_keep_their_own_tokens():
    cache = PrefixCache(SMALL, 400 * PER_POSITION, torch.float32, "cpu")
    texts = [en(1, 2, *[10 + i] * 8) for i in range(8)]

    def insert_many(keys):
        for _ in range(20):
            put(cache, keys)

    threads = [threading.Thread(target=insert_many, args=(keys,)) for keys in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for keys in texts:
        match = cache.match_prefix(keys)
        context = cache.context(match, len(match), KVCache(SMALL, 1, 1, dtype=torch.float32, device="cpu"))
        tokens = context.span(0, len(match))[0][0, :, 0, 0].tolist()
        assert tokens == [token for _, token in keys]
    assert cache.positions == 2 + 8 * 8  # the shared prefix once, each text's own tokens once


# The engine with the cache against the engine without it (a zero budget caches nothing).


def fresh_engine(folder, budget: int = 0) -> Engine:
    return Engine.load(str(folder), device="cpu", prefix_cache_bytes=budget)


def test_the_budget_is_the_callers(tiny_model):
    assert fresh_engine(tiny_model[0]).prefix_cache.capacity == 0  # off: nothing is kept
    per_position = fresh_engine(tiny_model[0], 1 << 20).prefix_cache.bytes_per_position
    assert fresh_engine(tiny_model[0], 1 << 20).prefix_cache.capacity == (1 << 20) // per_position


def assert_same_analysis(cached, scratch):
    assert [s.id for s in cached.scores] == [s.id for s in scratch.scores]
    for a, b in zip(cached.scores[1:], scratch.scores[1:], strict=True):
        assert a.prob == pytest.approx(b.prob, abs=1e-5) and a.rank == b.rank
        assert [t for t, _ in a.expected] == [t for t, _ in b.expected]
    probs_a = {c.id: c.prob for c in cached.next_token.candidates}
    probs_b = {c.id: c.prob for c in scratch.next_token.candidates}
    assert probs_a.keys() == probs_b.keys()
    assert all(abs(probs_a[i] - probs_b[i]) < 1e-5 for i in probs_a)
    assert cached.next_token.entropy == pytest.approx(scratch.next_token.entropy, abs=1e-5)


TYPED = "The cat sat on the mat because it was warm, and the dog slept by the door."


def test_typing_editing_and_switching_language_equal_running_from_scratch(tiny_model):
    cached, scratch = fresh_engine(tiny_model[0], budget=64 << 20), fresh_engine(tiny_model[0])
    texts = [TYPED[:n] for n in range(1, len(TYPED) + 1, 7)]  # typed a few characters at a time
    texts += [TYPED.replace("cat", "bird"), TYPED.replace("warm", "cold"), TYPED]  # edits in the middle
    for lang in ("en", "de", "en"):
        for text in texts:
            encoded = cached.encode(text, lang)
            assert_same_analysis(cached.analyse(encoded), scratch.analyse(encoded))
    assert cached.prefix_cache.hits > 0


def test_continuation_step_and_undo_equal_running_from_scratch(tiny_model):
    cached, scratch = fresh_engine(tiny_model[0], budget=64 << 20), fresh_engine(tiny_model[0])
    encoded = cached.encode("Die Katze sitzt auf der", "de")
    cached.analyse(encoded)
    new = [step.id for step in cached.generate(encoded, 6, GREEDY)]
    assert new == [step.id for step in scratch.generate(encoded, 6, GREEDY)]
    for n in (6, 5, 3, 4):  # the page after Continue, Undo, Undo twice, then a Step
        longer = cached.append(encoded, new[:n])
        assert_same_analysis(cached.analyse(longer), scratch.analyse(longer))


def test_eviction_under_a_small_budget_keeps_results_right(tiny_model):
    tiny_budget = 12 * tiny_model_bytes_per_position(tiny_model[0])
    cached, scratch = fresh_engine(tiny_model[0], budget=tiny_budget), fresh_engine(tiny_model[0])
    for text in (TYPED, TYPED[:30], "Ganz anders", TYPED):
        encoded = cached.encode(text, "en")
        assert_same_analysis(cached.analyse(encoded), scratch.analyse(encoded))
        assert cached.prefix_cache.positions <= 12


def tiny_model_bytes_per_position(folder) -> int:
    return fresh_engine(folder).prefix_cache.bytes_per_position


def test_compare_through_the_cache_equals_the_batched_forward_and_runs_nothing_twice(tiny_model):
    cached, scratch = fresh_engine(tiny_model[0], budget=64 << 20), fresh_engine(tiny_model[0])
    encodings = [cached.encode(TYPED, lang) for lang in cached.lang2id]
    cached.analyse(encodings[0])  # the page showed the text under its first id
    run_before = cached.prefix_cache.misses
    ours, theirs = cached.compare_encoded(encodings, cached=True), scratch.compare_encoded(encodings)
    assert cached.prefix_cache.misses - run_before == len(encodings[1].input_ids)  # only the other id's text ran
    for lang, distribution in theirs.distributions.items():
        probs = {c.id: c.prob for c in ours.distributions[lang].candidates}
        assert probs.keys() == {c.id for c in distribution.candidates}
        assert all(abs(probs[c.id] - c.prob) < 1e-5 for c in distribution.candidates)
    assert ours.kl == pytest.approx(theirs.kl, abs=1e-5)
    run_before = cached.prefix_cache.misses
    cached.compare_encoded(encodings, cached=True)
    assert cached.prefix_cache.misses == run_before  # again: everything from the cache


def test_a_continuations_scores_kept_as_its_tokens_were_chosen_equal_the_reference(tiny_model):
    engine = fresh_engine(tiny_model[0], budget=64 << 20)
    encoded = engine.encode("Die Katze sitzt auf der", "de")
    longer = engine.append(encoded, [step.id for step in engine.generate(encoded, 6, GREEDY)])
    misses = engine.prefix_cache.misses
    scores = engine.analyse(longer).scores
    assert engine.prefix_cache.misses == misses + 1  # all but the last token chosen (never run) from the cache
    logprobs = reference_logits(tiny_model[1], longer.input_ids, engine.lang2id["de"]).log_softmax(-1)  # (T, V)
    for position, score in enumerate(scores[1:], start=1):
        before = logprobs[position - 1]
        assert score.logprob == pytest.approx(float(before[score.id]), abs=1e-5)
        assert score.rank == int((before > before[score.id]).sum()) + 1
        assert score.entropy == pytest.approx(float(-(before.exp() * before).sum()), abs=1e-4)
        assert [prob for _, prob in score.expected] == pytest.approx(before.topk(3).values.exp().tolist(), abs=1e-5)
