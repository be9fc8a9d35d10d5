"""Multi-head attention as in Su's Keras ``Attention`` layer (posts 4 and 5).

Su's layer (``seq2seq_bidecoder.py`` / ``el.py``): bias-free Dense projections of q, k, v into
``heads x head_dim``, scaled dot product, key mask applied before the softmax, optional
``mask_right`` (causal), no output projection (output is ``heads * head_dim``). Used as
``Attention(8, 16)`` for the bidirectional decoder interaction and the entity-linking cross
attention.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from kexue.nn.masks import masked_softmax

__all__ = ["MultiHeadAttention"]


class MultiHeadAttention(nn.Module):
    """Masked multi-head attention ``Attn(heads x head_dim)(q, k, v)``.

    Args:
        query_dim: feature size of ``q``.
        key_dim: feature size of ``k``.
        heads: number of heads (Su: 8).
        head_dim: size per head (Su: 16); the scores are scaled by ``1/sqrt(head_dim)``.
        value_dim: feature size of ``v``; defaults to ``key_dim``.
        out_dim: if given, a final ``Linear(heads*head_dim, out_dim)`` (with bias) is applied;
            ``None`` (Su's layer) returns the concatenated heads.
        bias: bias in the q/k/v projections (Su: none).
    """

    def __init__(self, query_dim: int, key_dim: int, heads: int = 8, head_dim: int = 16,
                 value_dim: int | None = None, out_dim: int | None = None,
                 bias: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        inner = heads * head_dim
        self.q_proj = nn.Linear(query_dim, inner, bias=bias)
        self.k_proj = nn.Linear(key_dim, inner, bias=bias)
        self.v_proj = nn.Linear(value_dim if value_dim is not None else key_dim, inner, bias=bias)
        self.out_proj: nn.Module = (nn.Linear(inner, out_dim) if out_dim is not None
                                    else nn.Identity())
        self.output_size = out_dim if out_dim is not None else inner

    def split_heads(self, t: Tensor) -> Tensor:
        """Projected ``(B, L, heads * head_dim)`` -> per-head ``(B, heads, L, head_dim)``."""
        B, L, _ = t.shape
        return t.view(B, L, self.heads, self.head_dim).transpose(1, 2)  # (B, H, L, d)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None = None,
                causal: bool = False, query_mask: Tensor | None = None) -> Tensor:
        """Attend from each query position to the valid key positions.

        Args:
            q: ``(B, Lq, query_dim)``.
            k: ``(B, Lk, key_dim)``.
            v: ``(B, Lk, value_dim)``.
            key_mask: ``(B, Lk)`` bool, True = key may be attended. ``None`` = all valid.
            causal: Su's ``mask_right``: query position ``i`` attends only key positions
                ``j <= i`` (``Lq`` need not equal ``Lk``; key ``j > i`` is masked).
            query_mask: optional ``(B, Lq)`` bool; output rows of padded queries are zeroed
                (Su's ``q_mask`` 'mul').

        Returns:
            ``(B, Lq, out_dim or heads*head_dim)``. A query with no attendable key gets a zero
            context vector (then ``out_proj`` bias if ``out_dim`` is set), never NaN.
        """
        B, Lq, _ = q.shape
        Lk = k.shape[1]
        kh, vh = self.project_kv(k, v)  # (B, H, Lk, d) each
        qh = self.project_q(q)  # (B, H, Lq, d)
        allowed = torch.ones(1, 1, 1, Lk, dtype=torch.bool, device=q.device)
        if key_mask is not None:
            if key_mask.shape != (B, Lk):
                raise ValueError(f"key_mask must be (B, Lk) = ({B}, {Lk}), "
                                 f"got {tuple(key_mask.shape)}")
            allowed = (key_mask != 0).view(B, 1, 1, Lk)
        if causal:
            i = torch.arange(Lq, device=q.device).unsqueeze(1)  # (Lq, 1)
            j = torch.arange(Lk, device=q.device).unsqueeze(0)  # (1, Lk)
            allowed = allowed & (j <= i).view(1, 1, Lq, Lk)
        ctx = self.attend(qh, kh, vh, allowed)  # (B, H, Lq, d)
        ctx = ctx.transpose(1, 2).reshape(B, Lq, self.heads * self.head_dim)
        if query_mask is not None:
            ctx = ctx.masked_fill(~(query_mask != 0).unsqueeze(-1), 0.0)
        return self.out_proj(ctx)

    # -- pieces of forward, public so that incremental decoding can cache the projected keys
    def project_q(self, q: Tensor) -> Tensor:
        """Per-head queries: ``(B, Lq, query_dim)`` -> ``(B, H, Lq, d)``."""
        return self.split_heads(self.q_proj(q))

    def project_kv(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Per-head keys and values: ``(B, Lk, key_dim)``, ``(B, Lk, value_dim)`` -> two
        ``(B, H, Lk, d)``. Position-wise, so projecting a sequence step by step and
        concatenating equals projecting it at once (decoding caches them)."""
        if v.shape[:2] != k.shape[:2]:
            raise ValueError(f"k and v must share (B, Lk); got {tuple(k.shape)} and "
                             f"{tuple(v.shape)}")
        return self.split_heads(self.k_proj(k)), self.split_heads(self.v_proj(v))

    def attend(self, qh: Tensor, kh: Tensor, vh: Tensor, allowed: Tensor) -> Tensor:
        """Scaled dot-product attention on projected heads (any broadcastable leading dims).

        Args:
            qh: ``(..., Lq, d)`` queries; ``kh``, ``vh``: ``(..., Lk, d)``.
            allowed: bool with as many dims as the scores ``(..., Lq, Lk)``, broadcastable.

        Returns:
            ``(..., Lq, d)`` per-head context (heads not merged, no ``out_proj``); a query with
            no allowed key gets zeros.
        """
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(self.head_dim)  # (..., Lq, Lk)
        return masked_softmax(scores, allowed, dim=-1) @ vh  # (..., Lq, d)
