"""Keys and values of token prefixes already run, shared by every session, so an event runs only what is new.

A trie of positions keyed by (language id, token id), as SGLang's radix cache keys tokens with an extra key: two
texts share a node only where every earlier position has the same token and the same language id. Each node
holds a slot in a pool of keys and values (the tensors live beside the tree), the score of its token given the
prefix before it, and, for the most recently used nodes, the logits of the token after it.

Only `match_prefix`, `insert`, `release` and `evict` change state; a matched prefix stays pinned until released, and
eviction takes the least recently used unpinned leaves until the pool has room.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from ..model.kv import KVPool, Paged
from ..model.xlm import KVCache, XLMConfig

Key = tuple[int, int]  # (language id, token id) of one position
LOG_EVERY = 500  # inserts between two log lines saying what the cache holds
# A text's next-token logits are kept for its last position, so that its next keystroke need not run that position
# again: one text end per 16 cached positions (a room's members each keep their own, with texts of 16 positions and
# more), from 256 to 1,024 texts (66 to 265 MB of the real model's logits).
POSITIONS_PER_LOGITS_ROW, MIN_LOGITS_ROWS, MAX_LOGITS_ROWS = 16, 256, 1024

log = logging.getLogger("xlm_demo")


@dataclass(eq=False)
class Node:
    """One cached position: its slot in the pool, what it scored, and who holds it."""

    key: Key | None
    parent: Node | None
    slot: int
    score: object = None  # the engine's score of this token given the positions before it
    children: dict[Key, Node] = field(default_factory=dict)
    pins: int = 0
    last_used: int = 0


@dataclass
class Match:
    """The longest cached prefix of a key sequence: its nodes, pinned until released."""

    nodes: list[Node]

    def __len__(self) -> int:
        return len(self.nodes)


class PrefixCache:
    """Cached positions of every text any session ran, bounded in bytes, least recently used evicted first."""

    def __init__(
        self,
        config: XLMConfig,
        budget_bytes: int,
        dtype: torch.dtype,
        device: torch.device | str,
        logits_rows: int | None = None,  # texts whose next-token logits stay (default: by the capacity)
    ):
        self.bytes_per_position = KVPool.bytes_per_position(config, dtype)
        self.capacity = max(0, budget_bytes // self.bytes_per_position)
        logits_rows = logits_rows or min(
            MAX_LOGITS_ROWS, max(MIN_LOGITS_ROWS, self.capacity // POSITIONS_PER_LOGITS_ROW)
        )
        self.pool = KVPool(config, self.capacity, dtype, device)
        self.root = Node(key=None, parent=None, slot=-1)
        self.logits: OrderedDict[Node, torch.Tensor] = OrderedDict()  # node -> (V,) logits after it, newest last
        self.logits_rows = logits_rows
        self.lock = threading.Lock()
        self.clock = itertools.count(1)
        # Leaves that may be evicted, least recently used first, kept as they become so (a release, an eviction
        # baring a parent): no walk of the tree per eviction. Entries go stale when a leaf is used again, gets a child
        # or goes: checked when taken, and the heap rebuilt from the tree when stale ones pile up.
        self.leaves: list[tuple[int, int, Node]] = []  # heap of (last_used, order, node)
        self.order = itertools.count()
        self.hits = self.misses = 0  # positions found and not found, for the log and the model panel
        self.inserts = 0

    @property
    def positions(self) -> int:
        return self.capacity - len(self.pool.free)

    @property
    def budget_bytes(self) -> int:
        return self.capacity * self.bytes_per_position

    def describe(self) -> str:
        """One line: what the cache holds and how often it helped."""
        held_mb, budget_mb = self.positions * self.bytes_per_position / 2**20, self.budget_bytes / 2**20
        return (
            f"prefix cache: {self.positions:,} of {self.capacity:,} positions ({held_mb:.0f} of {budget_mb:.0f} MB), "
            f"{self.hits:,} positions found, {self.misses:,} not"
        )

    def match_prefix(self, keys: list[Key]) -> Match:
        """The cached nodes along `keys` from the start, pinned against eviction until `release`."""
        with self.lock:
            nodes, node, now = [], self.root, next(self.clock)
            for key in keys:
                node = node.children.get(key)
                if node is None:
                    break
                node.pins += 1
                node.last_used = now
                nodes.append(node)
            self.hits += len(nodes)
            self.misses += len(keys) - len(nodes)
            return Match(nodes)

    def context(self, match: Match, n_positions: int, own: KVCache) -> Paged:
        """A sequence whose first n_positions are a pinned match's, read where they are, and whose next ones go into
        `own`."""
        return Paged(self.pool, [node.slot for node in match.nodes[:n_positions]], own)

    def release(self, match: Match) -> None:
        """Unpin a match's nodes."""
        with self.lock:
            for node in match.nodes:
                node.pins -= 1
            if match.nodes:  # a match is a path: only its last node can be a leaf
                self._note_leaf(match.nodes[-1])

    def last_logits(self, match: Match) -> torch.Tensor | None:
        """The (V,) logits after a match's last position, if still kept."""
        with self.lock:
            logits = self.logits.get(match.nodes[-1]) if match.nodes else None
            if logits is not None:
                self.logits.move_to_end(match.nodes[-1])
            return logits

    def insert(
        self,
        match: Match,
        keys: list[Key],
        cache: KVCache | Paged,
        scores: list[object],
        last_logits: torch.Tensor | None = None,
    ) -> Match:
        """Add positions len(match) … len(keys) - 1, whose keys and values are in `cache` and scores in `scores`
        (one per position, from the first). Returns the match extended by them, pinned: release it instead of
        `match`. Stops early, without error, where the pool is full of pinned positions."""
        with self.lock:
            nodes, now = list(match.nodes), next(self.clock)
            node = nodes[-1] if nodes else self.root
            self._evict_locked(self._missing(node, keys[len(match) :]) - len(self.pool.free))
            new_slots, first_new = [], None
            for position in range(len(match), len(keys)):
                child = node.children.get(keys[position])
                if child is None:  # another session may have added it meanwhile: then share that one
                    if not self.pool.free:
                        break
                    child = Node(keys[position], node, self.pool.free.pop(), scores[position])
                    node.children[keys[position]] = child
                    new_slots.append(child.slot)
                    first_new = position if first_new is None else first_new
                child.pins += 1
                child.last_used = now
                nodes.append(child)
                node = child
            if new_slots:
                self.pool.write(new_slots, cache, first_new)
            self.inserts += 1
            if self.inserts % LOG_EVERY == 0:
                log.info("%s", self.describe())
            if last_logits is not None and nodes and len(nodes) == len(keys):
                self.logits[nodes[-1]] = last_logits
                self.logits.move_to_end(nodes[-1])
                while len(self.logits) > self.logits_rows:
                    self.logits.popitem(last=False)
            return Match(nodes)

    def evict(self, n_positions: int) -> int:
        """Free up to n_positions slots, least recently used unpinned leaves first; returns how many were freed."""
        with self.lock:
            return self._evict_locked(n_positions)

    def _evict_locked(self, n_positions: int) -> int:
        freed = 0
        while self.leaves and freed < n_positions:
            last_used, _, leaf = heapq.heappop(self.leaves)
            stale = last_used != leaf.last_used or leaf.parent.children.get(leaf.key) is not leaf
            if stale or not self._evictable(leaf):
                continue  # used again since, gone, pinned or grown a child
            parent = leaf.parent
            del parent.children[leaf.key]
            self.pool.free.append(leaf.slot)
            self.logits.pop(leaf, None)
            freed += 1
            self._note_leaf(parent)
        return freed

    def _note_leaf(self, node: Node) -> None:
        """Keep a node among the leaves that may be evicted, if it is one."""
        if node is not self.root and self._evictable(node):
            heapq.heappush(self.leaves, (node.last_used, next(self.order), node))
        if len(self.leaves) > 2 * self.capacity + 1024:  # mostly stale entries: the evictable leaves found again
            self.leaves = [(node.last_used, next(self.order), node) for node in self._nodes() if self._evictable(node)]
            heapq.heapify(self.leaves)

    @staticmethod
    def _evictable(node: Node) -> bool:
        return not node.children and node.pins == 0

    @staticmethod
    def _missing(node: Node, keys: list[Key]) -> int:
        """How many of `keys`, read as a path down from `node`, are not in the tree yet."""
        for depth, key in enumerate(keys):
            node = node.children.get(key)
            if node is None:
                return len(keys) - depth
        return 0

    def _nodes(self) -> list[Node]:
        stack, found = list(self.root.children.values()), []
        while stack:
            node = stack.pop()
            found.append(node)
            stack.extend(node.children.values())
        return found
