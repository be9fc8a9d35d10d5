"""Encode-once inference for the matcher: text states once per text, descriptions once per entity.

The per-pair path (:meth:`kexue.models.entity_linking.decode.Linker.link_per_pair`, kept as the
reference) re-runs the NER BiLSTM of the text and the description encoder for EVERY
(span, candidate) pair. Here:

* the text BiLSTM states ``h`` come from the NER pass (one per text);
* each candidate's description is encoded once (embedding + BiLSTM) and kept in a
  :class:`~kexue.models.entity_linking.description_cache.DescriptionCache` across texts and
  calls;
* only the rest runs per pair, batched (pairs sorted by text length): the query BiLSTM over
  ``[h, span features]``, the attention projections (one fused matmul per side), the two
  attentions (the fused ``scaled_dot_product_attention`` kernel) and the Dense head.

Same model function as :meth:`JointLinker.match_logit`; the scores agree with the per-pair path
to float rounding (batch composition and the fused kernels round differently), and the
predictions are the same (tested on the default world's submission).

Device: everything runs on the model's device; row lengths are known on the host, so no step
waits for the device (the BiLSTMs get host ``lengths``); the scores of a call are copied to the
host once, at its end.

Shapes: ``B`` pairs, ``L`` text length, ``M`` description length, ``2H`` BiLSTM output,
``I = heads * head_dim``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kexue.models.entity_linking.model import JointLinker
from kexue.nn import MultiHeadAttention, lengths_to_mask, masked_max


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
    """``cat([layer(x) for layer in layers], -1)`` as one matmul (the layers all have a bias
    or none has: one ``MultiHeadAttention``'s projections share their ``bias`` setting)."""
    biases = [layer.bias for layer in layers]
    if len({b is None for b in biases}) > 1:
        raise ValueError("fused_linear: every layer needs a bias, or none")
    bias = None if biases[0] is None else torch.cat(biases)  # type: ignore[arg-type]
    return F.linear(x, torch.cat([layer.weight for layer in layers]), bias)


@torch.no_grad()
def score_encoded(net: JointLinker, h: Tensor, lengths: np.ndarray, span_feats: Tensor,
                  desc: tuple[Tensor, Tensor]) -> Tensor:
    """Matcher probabilities of pairs from text states and cached descriptions.

    Args:
        net: The model.
        h: ``(B, L, 2H)`` NER BiLSTM states of each pair's text.
        lengths: ``(B,)`` host text lengths (``L`` = their max).
        span_feats: ``(B, L, 4)`` ``[span 0/1, f1, f2, f3]``.
        desc: ``DescriptionCache.gather`` of each pair's candidate: ``d (B, M, 2H)``, ``d_mask``.

    Returns:
        ``(B,)`` probabilities (on the model's device; no host sync).
    """
    d, d_mask = desc
    qd_layer, dq_layer = net.attn_qd, net.attn_dq
    k_qd, v_qd, q_dq = fused_linear(d, [qd_layer.k_proj, qd_layer.v_proj, dq_layer.q_proj]
                                    ).chunk(3, dim=-1)  # (B, M, I) each
    host_lengths = torch.from_numpy(lengths)
    mask = lengths_to_mask(host_lengths, h.shape[1]).to(h.device)  # (B, L)
    q, ys = net.encode_query(h, mask, span_feats, lengths=host_lengths)  # no device wait
    proj = fused_linear(q, [qd_layer.q_proj, dq_layer.k_proj, dq_layer.v_proj])  # (B, L, 3I)
    q_qd, k_dq, v_dq = proj.chunk(3, dim=-1)  # (B, L, I) each
    split_qd, split_dq = qd_layer.split_heads, dq_layer.split_heads
    qd = attend(qd_layer, split_qd(q_qd), split_qd(k_qd), split_qd(v_qd), d_mask)  # (B, L, I)
    dq = attend(dq_layer, split_dq(q_dq), split_dq(k_dq), split_dq(v_dq), mask)  # (B, M, I)
    logit = net.match_head(q, mask, ys, masked_max(qd, mask, dim=1),
                           masked_max(dq, d_mask, dim=1))
    return torch.sigmoid(logit)  # (B,)


def pad_states(chunks: Sequence[Tensor]) -> Tensor:
    """Concatenate per-batch ``(b, L_b, F)`` states into ``(sum b, max L_b, F)`` (zero padded)."""
    width = max(c.shape[1] for c in chunks)
    return torch.cat([torch.nn.functional.pad(c, (0, 0, 0, width - c.shape[1])) for c in chunks])


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Tensor]:
    """Move a collated batch to ``device`` (queued, no wait for the device)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
