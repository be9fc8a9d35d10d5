"""Encode-once inference for the matcher: text states once per text, descriptions once per entity.

The per-pair path (:meth:`kexue.models.entity_linking.decode.Linker.link_per_pair`, kept as the
reference) re-runs the NER BiLSTM of the text and the description encoder for EVERY
(span, candidate) pair. Here:

* the text BiLSTM states ``h`` come from the NER pass (one per text);
* each candidate's description is encoded once (embedding + BiLSTM) and kept in a
  :class:`DescriptionCache` across texts and calls;
* only the rest runs per pair, batched (pairs sorted by text length): the query BiLSTM over
  ``[h, span features]``, the attention projections (one fused matmul per side), the two
  attentions (the fused ``scaled_dot_product_attention`` kernel) and the Dense head.

Same model function as :meth:`JointLinker.match_logit`; the scores agree with the per-pair path
to float rounding (batch composition and the fused kernels round differently), and the
predictions are the same (tested on the default world's submission).

Shapes: ``B`` pairs, ``L`` text length, ``M`` description length, ``2H`` BiLSTM output,
``I = heads * head_dim``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kexue.models.entity_linking.batching import pad_rows
from kexue.models.entity_linking.model import JointLinker
from kexue.nn import MultiHeadAttention, masked_max


def split_heads(x: Tensor, heads: int) -> Tensor:
    """``(B, L, heads * d)`` -> ``(B, heads, L, d)``."""
    B, L, inner = x.shape
    return x.view(B, L, heads, inner // heads).transpose(1, 2)


def attend(attn: MultiHeadAttention, qh: Tensor, kh: Tensor, vh: Tensor, key_mask: Tensor
           ) -> Tensor:
    """``MultiHeadAttention.forward`` from already projected heads, padded queries NOT zeroed.

    The fused ``scaled_dot_product_attention`` kernel (the per-pair path's explicit
    ``masked_softmax`` chain gives the same values to float rounding, ~2.5x slower on CPU).
    Callers only max-pool over valid queries, so the rows of padded queries never matter; every
    row has a valid key (texts and descriptions are never empty).

    Args:
        attn: The layer (its ``head_dim`` and ``out_proj``).
        qh: ``(B, heads, Lq, d)``; kh, vh: ``(B, heads, Lk, d)``.
        key_mask: ``(B, Lk)`` bool.

    Returns:
        ``(B, Lq, I)`` context.
    """
    B, heads, Lq, d = qh.shape
    ctx = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=key_mask.view(B, 1, 1, -1),
                                         scale=1.0 / math.sqrt(attn.head_dim))  # (B, heads, Lq, d)
    return attn.out_proj(ctx.transpose(1, 2).reshape(B, Lq, heads * d))  # (B, Lq, I)


def fused_linear(x: Tensor, layers: Sequence[torch.nn.Linear]) -> Tensor:
    """``cat([layer(x) for layer in layers], -1)`` as one matmul."""
    biases = [layer.bias for layer in layers]
    if any(b is None for b in biases) and any(b is not None for b in biases):
        return torch.cat([layer(x) for layer in layers], -1)
    bias = None if biases[0] is None else torch.cat(biases)  # type: ignore[arg-type]
    return F.linear(x, torch.cat([layer.weight for layer in layers]), bias)


def weight_version(module: torch.nn.Module) -> tuple[tuple[int, int], ...]:
    """Fingerprint of the weights: every parameter's storage address and in-place version.

    An optimizer step, ``load_state_dict`` (``copy_``) or EMA swap bumps ``Tensor._version``;
    ``.to(device)`` moves the storage. Either changes the fingerprint.
    """
    return tuple((p.data_ptr(), p._version) for p in module.parameters())


class DescriptionCache:
    """Encoded descriptions of one model, keyed by entity id, on the model's device.

    Per entity it holds the description BiLSTM states ``d (M_e, 2H)`` in a padded table
    ``(capacity, max_len, 2H)`` (grown by doubling) with host-side lengths, so a batch is
    sliced to its longest description without a device sync. The attention projections of
    ``d`` are recomputed per batch (one matmul): caching them would take ``3 * heads *
    head_dim / 2H`` = 12x the memory at the CPU defaults, 3x at Su's sizes.

    Validity: entries belong to one weight version (:func:`weight_version`). Every
    :meth:`rows` call compares the model's fingerprint with the cached one and drops the whole
    cache when the weights were trained, reloaded or moved, so a cached encoding never outlives
    the weights that produced it. Memory is bounded by ``max_bytes``: when new entries would
    exceed it, the cache is emptied first (then refilled by the entities of the current call).

    Args:
        net: The model (eval mode for inference).
        encode_inputs: ``entity id -> (char ids, word ids or None)``
            (``LinkingResources.description``; at most ``max_len`` chars).
        max_len: Longest description (``ModelConfig.max_desc_len``).
        batch_size: Descriptions per encoder batch.
        max_bytes: Memory budget of the table.
    """

    def __init__(self, net: JointLinker,
                 encode_inputs: Callable[[str], tuple[list[int], list[int] | None]],
                 max_len: int, batch_size: int = 128, max_bytes: int = 512 * 2**20) -> None:
        self.net = net
        self.encode_inputs = encode_inputs
        self.max_len = max_len
        self.batch_size = batch_size
        self.max_rows = max(1, max_bytes // (max_len * net.desc_lstm.output_size * 4))
        self.clear()

    def clear(self) -> None:
        """Forget every entry (and the weight fingerprint)."""
        self.row: dict[str, int] = {}
        self.lengths = np.zeros(0, dtype=np.int64)
        self.table: Tensor | None = None  # (capacity, max_len, 2H)
        self.version: tuple[tuple[int, int], ...] | None = None

    def __len__(self) -> int:
        return len(self.row)

    def _reserve(self, n: int, like: Tensor) -> Tensor:
        """The table with room for ``n`` rows (doubling its capacity when needed)."""
        if self.table is None or self.table.shape[0] < n:
            capacity = max(n, 2 * (0 if self.table is None else self.table.shape[0]), 64)
            table = like.new_zeros(capacity, self.max_len, like.shape[-1])
            if self.table is not None:
                table[:len(self.row)] = self.table[:len(self.row)]
            self.table = table
        return self.table

    @torch.no_grad()
    def _encode(self, ids: Sequence[str]) -> None:
        """Encode the descriptions of new ``ids`` in batches into the next table rows."""
        device = next(self.net.parameters()).device
        lengths = []
        for b in range(0, len(ids), self.batch_size):
            inputs = [self.encode_inputs(e) for e in ids[b:b + self.batch_size]]
            desc = pad_rows([c for c, _ in inputs], torch.long).to(device)  # (b, M)
            words = None
            if inputs[0][1] is not None:
                words = pad_rows([w for _, w in inputs], torch.long).to(device)
            d, _ = self.net.encode_description(desc, words)  # (b, M, 2H), zeros at padding
            start = len(self.row)
            table = self._reserve(start + d.shape[0], d)
            table[start:start + d.shape[0], :d.shape[1]] = d
            for e, (c, _) in zip(ids[b:b + self.batch_size], inputs):
                self.row[e] = len(self.row)
                lengths.append(len(c))
        self.lengths = np.concatenate([self.lengths, np.asarray(lengths, dtype=np.int64)])

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """Table rows of ``ids`` (encoding the missing ones first, in one pass)."""
        version = weight_version(self.net)
        if version != self.version:
            self.clear()
            self.version = version
        missing = list(dict.fromkeys(e for e in ids if e not in self.row))
        if missing and len(self.row) + len(missing) > self.max_rows:
            self.clear()
            self.version = version
            missing = list(dict.fromkeys(ids))
        if missing:
            self._encode(missing)
        return np.fromiter((self.row[e] for e in ids), dtype=np.int64, count=len(ids))

    def gather(self, rows: np.ndarray) -> tuple[Tensor, Tensor]:
        """``d (B, M, 2H)`` and ``d_mask (B, M)`` of table rows, ``M`` = their longest."""
        if self.table is None:
            raise RuntimeError("DescriptionCache.gather before rows()")
        lengths = self.lengths[rows]
        width = int(lengths.max())
        idx = torch.from_numpy(rows).to(self.table.device)
        d = self.table.index_select(0, idx)[:, :width]  # (B, M, 2H)
        mask = torch.from_numpy(np.arange(width)[None, :] < lengths[:, None])
        return d, mask.to(self.table.device, non_blocking=True)


@torch.no_grad()
def score_encoded(net: JointLinker, h: Tensor, mask: Tensor, span_feats: Tensor,
                  desc: tuple[Tensor, Tensor]) -> Tensor:
    """Matcher probabilities of pairs from text states and cached descriptions.

    Args:
        net: The model.
        h: ``(B, L, 2H)`` NER BiLSTM states of each pair's text.
        mask: ``(B, L)`` text mask.
        span_feats: ``(B, L, 4)`` ``[span 0/1, f1, f2, f3]``.
        desc: :meth:`DescriptionCache.gather` of each pair's candidate.

    Returns:
        ``(B,)`` probabilities (on the model's device; no host sync).
    """
    d, d_mask = desc
    qd_layer, dq_layer = net.attn_qd, net.attn_dq
    k_qd, v_qd, q_dq = fused_linear(d, [qd_layer.k_proj, qd_layer.v_proj, dq_layer.q_proj]
                                    ).chunk(3, dim=-1)  # (B, M, I) each
    q, ys = net.encode_query(h, mask, span_feats)  # (B, L, 2H), (B, 2H)
    proj = fused_linear(q, [qd_layer.q_proj, dq_layer.k_proj, dq_layer.v_proj])  # (B, L, 3I)
    q_qd, k_dq, v_dq = proj.chunk(3, dim=-1)  # (B, L, I) each
    qd = attend(qd_layer, split_heads(q_qd, qd_layer.heads), split_heads(k_qd, qd_layer.heads),
                split_heads(v_qd, qd_layer.heads), d_mask)  # (B, L, I)
    dq = attend(dq_layer, split_heads(q_dq, dq_layer.heads), split_heads(k_dq, dq_layer.heads),
                split_heads(v_dq, dq_layer.heads), mask)  # (B, M, I)
    logit = net.match_head(q, mask, ys, masked_max(qd, mask, dim=1),
                           masked_max(dq, d_mask, dim=1))
    return torch.sigmoid(logit)  # (B,)


def span_features(n: int, start: int, end: int, feats: np.ndarray) -> np.ndarray:
    """``(n, 4)`` ``[span 0/1, f1, f2, f3]`` of a pair (as ``LinkingResources.pair``)."""
    span = np.zeros((n, 1), dtype=np.float32)
    span[start:end] = 1.0
    return np.concatenate([span, feats], axis=1)


def pad_states(chunks: Sequence[Tensor]) -> Tensor:
    """Concatenate per-batch ``(b, L_b, F)`` states into ``(sum b, max L_b, F)`` (zero padded)."""
    width = max(c.shape[1] for c in chunks)
    return torch.cat([torch.nn.functional.pad(c, (0, 0, 0, width - c.shape[1])) for c in chunks])


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Tensor]:
    """Move a collated batch to ``device`` (non-blocking from pinned memory on a GPU)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
