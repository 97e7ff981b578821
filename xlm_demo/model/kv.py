"""Keys and values shared between sequences: a pool of slots, one per position, and a sequence's view of its
context in it, read where it is (as SGLang's token pool and vLLM's paged attention read theirs), never copied into
the sequence's own cache."""

from __future__ import annotations

import itertools

import torch

from .xlm import KVCache, XLMConfig

SERIALS = itertools.count()  # one per Paged sequence ever made


class KVPool:
    """Preallocated keys and values for `capacity` positions, one slot each, every layer at once."""

    def __init__(self, config: XLMConfig, capacity: int, dtype: torch.dtype, device: torch.device | str):
        shape = (config.n_layers, capacity, config.n_heads, config.head_dim)
        self.keys = torch.empty(shape, dtype=dtype, device=device)  # (L, slots, H, D): resident as slots fill
        self.values = torch.empty(shape, dtype=dtype, device=device)
        self.free = list(range(capacity - 1, -1, -1))
        # One model run at a time (the engine's scheduler holds the model): a sequence's context is gathered here,
        # layer by layer, while its attention reads it. What a layer's buffer holds stays there for the sequence's
        # next token (a continuation), until another sequence's takes its place.
        context = (config.n_layers, config.max_positions, config.n_heads, config.head_dim)
        self.context_keys = torch.empty(context, dtype=dtype, device=device)  # (L, positions, H, D)
        self.context_values = torch.empty(context, dtype=dtype, device=device)
        self.gathered = [(-1, 0)] * config.n_layers  # per layer: whose positions (a Paged's serial), and how many

    @staticmethod
    def bytes_per_position(config: XLMConfig, dtype: torch.dtype) -> int:
        return 2 * config.n_layers * config.dim * torch.finfo(dtype).bits // 8

    def write(self, slots: list[int], cache: KVCache | Paged, start: int) -> None:
        """Copy a sequence's positions start … start + len(slots) - 1 into the slots."""
        index = torch.tensor(slots, dtype=torch.long, device=self.keys.device)
        keys, values = cache.span(start, start + len(slots))  # (L, n, H, D)
        self.keys[:, index] = keys
        self.values[:, index] = values

    def gather(
        self, layer: int, sequence: Paged, own_keys: torch.Tensor, own_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, H, P + m, D) keys and values of one layer of a sequence: its P slots', then its own (1, H, m, D). Of
        what the layer's buffer holds of the sequence since its last run, only the positions after it are copied."""
        n_slots, n = len(sequence.slots), len(sequence.slots) + own_keys.shape[2]
        keys, values = self.context_keys[layer, :n], self.context_values[layer, :n]  # (P + m, H, D)
        whose, held = self.gathered[layer]
        if whose != sequence.serial:
            torch.index_select(self.keys[layer], 0, sequence.slots, out=keys[:n_slots])
            torch.index_select(self.values[layer], 0, sequence.slots, out=values[:n_slots])
            held = n_slots
        keys[held:] = own_keys[0, :, held - n_slots :].transpose(0, 1)
        values[held:] = own_values[0, :, held - n_slots :].transpose(0, 1)
        # Kept: the positions filled before this run (those of a run that fails are written again by the next).
        self.gathered[layer] = (sequence.serial, n_slots + sequence.own.length)
        return keys.permute(1, 0, 2)[None], values.permute(1, 0, 2)[None]  # (1, H, P + m, D)


class Paged:
    """A sequence's keys and values: its first positions in slots of a shared pool, read where they are, and the
    positions after them in a cache of its own (batch row 0). Starting one copies nothing."""

    def __init__(self, pool: KVPool, slots: list[int], own: KVCache):
        self.pool, self.own = pool, own
        self.slots = torch.tensor(slots, dtype=torch.long, device=own.keys.device)  # (P,)
        self.start = len(slots)  # P: the first position the sequence holds itself
        self.serial = next(SERIALS)  # names it in the pool's gathered context

    @property
    def length(self) -> int:
        return self.start + self.own.length

    @property
    def capacity(self) -> int:
        return self.start + self.own.capacity

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new (1, H, T, D) keys and values of a layer; return all of them so far, (1, H, length + T, D)."""
        own_keys, own_values = self.own.update(layer, k, v)  # (1, H, m, D)
        if not self.start:
            return own_keys, own_values
        return self.pool.gather(layer, self, own_keys, own_values)

    def advance(self, n_tokens: int) -> None:
        """Mark n_tokens more positions as filled, once every layer has stored them."""
        self.own.advance(n_tokens)

    def span(self, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, end - start, H, D) keys and values of positions start … end - 1."""
        pooled = self.slots[start : min(end, self.start)]
        own_keys, own_values = self.own.span(max(start, self.start) - self.start, max(end, self.start) - self.start)
        if not len(pooled):
            return own_keys, own_values
        keys = torch.cat([self.pool.keys[:, pooled], own_keys], dim=1)  # (L, n, H, D)
        return keys, torch.cat([self.pool.values[:, pooled], own_values], dim=1)

    def repeated(self, batch_size: int, capacity: int) -> KVCache:
        """A new cache of `batch_size` rows, each holding this sequence, with room for `capacity` positions."""
        if capacity < self.length:
            raise ValueError(f"a cache of {capacity} positions cannot hold the {self.length} already filled")
        cache = KVCache(self.own.config, batch_size, capacity, dtype=self.own.keys.dtype, device=self.own.keys.device)
        keys, values = self.span(0, self.length)  # (L, n, H, D)
        cache.keys[:, :, :, : self.length] = keys.transpose(1, 2)[:, None]  # (L, 1, H, n, D) over the batch
        cache.values[:, :, :, : self.length] = values.transpose(1, 2)[:, None]
        cache.length = self.length
        return cache
