"""The XLM causal language model (Lample & Conneau 2019) in plain PyTorch, with a per-session KV cache."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import blas, precision


@dataclass(frozen=True)
class XLMConfig:
    """Shape of an XLM transformer; defaults are xlm-clm-ende-1024's."""

    vocab_size: int = 64699  # 14 specials + 64,685 BPE units of codes_ende
    dim: int = 1024
    n_layers: int = 6
    n_heads: int = 8
    n_langs: int = 2  # de=0, en=1 in xlm-clm-ende-1024 (sorted language codes)
    max_positions: int = 512  # learned position embeddings, no sinusoids
    layer_norm_eps: float = 1e-12

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def ffn_dim(self) -> int:
        return 4 * self.dim  # hard-coded as dim * 4 in XLM


class KVCache:
    """Keys and values of the tokens seen so far, owned by one request or session."""

    def __init__(
        self,
        config: XLMConfig,
        batch_size: int,
        capacity: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
    ):
        if not 0 < capacity <= config.max_positions:
            raise ValueError(f"cache capacity must be 1..{config.max_positions}, got {capacity}")
        self.config = config
        shape = (config.n_layers, batch_size, config.n_heads, capacity, config.head_dim)
        self.keys = torch.empty(shape, dtype=dtype, device=device)  # (L, B, H, capacity, D)
        self.values = torch.empty(shape, dtype=dtype, device=device)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.keys.shape[3]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new (B, H, T, D) keys and values of a layer; return all of them so far."""
        end = self.length + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"the KV cache holds {self.capacity} positions; {end} were asked for")
        self.keys[layer, :, :, self.length : end] = k
        self.values[layer, :, :, self.length : end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, n_tokens: int) -> None:
        """Mark n_tokens more positions as filled, once every layer has stored them."""
        self.length += n_tokens

    def span(self, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, end - start, H, D) keys and values of positions start … end - 1 of batch row 0."""
        return self.keys[:, 0, :, start:end].transpose(1, 2), self.values[:, 0, :, start:end].transpose(1, 2)

    def repeated(self, batch_size: int, capacity: int) -> KVCache:
        """A new cache of `batch_size` rows, each holding this cache's row 0, with room for `capacity` positions."""
        if capacity < self.length:
            raise ValueError(f"a cache of {capacity} positions cannot hold the {self.length} already filled")
        cache = KVCache(self.config, batch_size, capacity, dtype=self.keys.dtype, device=self.keys.device)
        cache.keys[:, :, :, : self.length] = self.keys[:, :1, :, : self.length]  # row 0 broadcast over the batch
        cache.values[:, :, :, : self.length] = self.values[:, :1, :, : self.length]
        cache.length = self.length
        return cache

    def truncate(self, length: int) -> None:
        """Forget every position from `length` on (undo)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate a cache of {self.length} positions to {length}")
        self.length = length


class Packed:
    """Several sequences' new tokens side by side in one row of a batch, each attending over its own keys and values
    (a KVCache's batch row 0, or a kv.Paged context): the linear layers read their weights once for all of them."""

    def __init__(self, caches: list, lengths: list[int]):
        self.caches, self.lengths = caches, lengths
        self.ends = list(itertools.accumulate(lengths))

    def positions(self, device: torch.device) -> torch.Tensor:
        """(N,) each new token's position in its own sequence."""
        return torch.cat([torch.arange(c.length, c.length + n, device=device) for c, n in self.segments()])

    def segments(self) -> list[tuple]:
        """Each sequence's cache and its number of new tokens."""
        return list(zip(self.caches, self.lengths, strict=True))

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(1, H, N, D) attention of each sequence's new queries over its own cached and new keys and values."""
        outputs = []
        for cache, end, n in zip(self.caches, self.ends, self.lengths, strict=True):
            span = slice(end - n, end)
            past = cache.length
            keys, values = cache.update(layer, k[:, :, span], v[:, :, span])  # (1, H, past + n, D)
            outputs.append(attend(q[:, :, span], keys, values, past))  # (1, H, n, D)
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)

    def advance(self) -> None:
        """Mark each sequence's new tokens as filled in its cache."""
        for cache, n in self.segments():
            cache.advance(n)


class Linear(nn.Linear):
    """nn.Linear whose float32 CPU inference runs on OpenBLAS once `blas.route` switched this layer there."""

    openblas = False  # set per layer by blas.route, never for the whole class

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.openblas and blas.handles(x):
            return blas.linear(x, self.weight, self.bias)
        if self.weight.dtype != x.dtype:  # a weight stored in bfloat16 for float32 activations (precision.py)
            return precision.mixed_linear(x, self.weight, self.bias)
        return super().forward(x)


class Attention(nn.Module):
    """Multi-head self-attention, causal as the checkpoint was trained (bidirectional only to show the pitfall)."""

    def __init__(self, config: XLMConfig):
        super().__init__()
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.q = Linear(config.dim, config.dim)
        self.k = Linear(config.dim, config.dim)
        self.v = Linear(config.dim, config.dim)
        self.out = Linear(config.dim, config.dim)

    def forward(self, x: torch.Tensor, layer: int, cache: KVCache | Packed | None, causal: bool = True) -> torch.Tensor:
        B, T, C = x.shape
        q = self.q(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = self.k(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        v = self.v(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        if isinstance(cache, Packed):
            y = cache.attend(layer, q, k, v)  # (1, H, N, D)
        else:
            past = 0
            if cache is not None:
                past = cache.length
                k, v = cache.update(layer, k, v)  # (B, H, past + T, D)
            y = attend(q, k, v, past, causal)  # (B, H, T, D)
        return self.out(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past: int, causal: bool = True) -> torch.Tensor:
    """(B, H, T, D) attention of T new queries over past + T keys and values, the last T being the new ones."""
    T = q.shape[2]
    is_causal = causal and past == 0 and T > 1  # lets SDPA pick its fused causal kernel
    mask = causal_mask(T, past, q.device) if causal and not is_causal else None
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)


def causal_mask(n_new: int, n_past: int, device: torch.device) -> torch.Tensor | None:
    """Boolean (T, past + T) mask letting each new position see itself and everything before it."""
    if n_new == 1:
        return None  # a single new token may see every cached key
    query_pos = torch.arange(n_past, n_past + n_new, device=device)
    key_pos = torch.arange(n_past + n_new, device=device)
    return key_pos[None, :] <= query_pos[:, None]  # (T, past + T)


class FeedForward(nn.Module):
    """Position-wise feed-forward with exact (erf) GELU, as XLM's gelu_activation."""

    def __init__(self, config: XLMConfig):
        super().__init__()
        self.lin1 = Linear(config.dim, config.ffn_dim)
        self.lin2 = Linear(config.ffn_dim, config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(F.gelu(self.lin1(x)))


class Block(nn.Module):
    """One post-LN transformer layer (LayerNorm after each residual sum, as in XLM and BERT)."""

    def __init__(self, config: XLMConfig):
        super().__init__()
        self.attn = Attention(config)
        self.norm1 = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
        self.ffn = FeedForward(config)
        self.norm2 = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, layer: int, cache: KVCache | Packed | None, causal: bool = True) -> torch.Tensor:
        x = self.norm1(x + self.attn(x, layer, cache, causal))
        return self.norm2(x + self.ffn(x))


class XLM(nn.Module):
    """Token + position + language embeddings, post-LN blocks, and a biased output projection."""

    def __init__(self, config: XLMConfig):
        super().__init__()
        self.config = config
        self.tokens = nn.Embedding(config.vocab_size, config.dim)
        self.positions = nn.Embedding(config.max_positions, config.dim)
        self.langs = nn.Embedding(config.n_langs, config.dim)
        self.embed_norm = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        # Its own bias; the weight is the stored pred_layer.proj.weight (equal to, and shared with, the
        # token embeddings when the checkpoint's two copies agree).
        self.proj = Linear(config.dim, config.vocab_size)

    def forward(
        self, input_ids: torch.Tensor, langs: torch.Tensor | None, cache: KVCache | None = None, causal: bool = True
    ) -> torch.Tensor:
        """Hidden states (B, T, dim) of new tokens (B, T) with language ids (B, T) or (B, 1).

        causal=False and langs=None exist only to show what transformers' defaults do: the hub config's `causal:
        false`, and no language embedding at all when a caller (the fill-mask pipeline) passes no `langs`. The model
        was trained causal, every position with its language id.
        """
        if cache is not None and not causal:
            raise ValueError("a KV cache only makes sense with causal attention")
        T = input_ids.shape[1]
        start = cache.length if cache is not None else 0
        if start + T > self.config.max_positions:
            raise ValueError(f"the model has {self.config.max_positions} positions; {start + T} were asked for")
        positions = torch.arange(start, start + T, device=input_ids.device)  # (T,)
        # No sqrt(dim) scaling of the embeddings: XLM adds them as they are.
        x = self.tokens(input_ids) + self.positions(positions)  # (B, T, C)
        if langs is not None:
            x = x + self.langs(langs)
        x = self.embed_norm(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, layer, cache, causal)
        if cache is not None:
            cache.advance(T)
        return x  # no final LayerNorm: post-LN blocks end normalised

    def forward_packed(self, input_ids: torch.Tensor, langs: torch.Tensor, packed: Packed) -> torch.Tensor:
        """Hidden states (N, dim) of several sequences' new tokens packed into (N,) ids and (N,) language ids, each
        sequence after the positions its own cache holds."""
        for cache, n in packed.segments():
            if cache.length + n > self.config.max_positions:
                raise ValueError(
                    f"the model has {self.config.max_positions} positions; {cache.length + n} were asked for"
                )
        positions = packed.positions(input_ids.device)  # (N,)
        x = self.embed_norm(self.tokens(input_ids) + self.positions(positions) + self.langs(langs))[None]  # (1, N, C)
        for layer, block in enumerate(self.blocks):
            x = block(x, layer, packed)
        packed.advance()
        return x[0]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-token logits (..., vocab_size) from hidden states (..., dim)."""
        return self.proj(hidden)

    @property
    def dtype(self) -> torch.dtype:
        """The activations' and the KV cache's dtype (the layer norms'), whatever the linear layers store."""
        return self.embed_norm.weight.dtype

    def new_cache(self, batch_size: int, capacity: int) -> KVCache:
        """An empty cache on this model's device and activations' dtype."""
        return KVCache(self.config, batch_size, capacity, dtype=self.dtype, device=self.tokens.weight.device)
