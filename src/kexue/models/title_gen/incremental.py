"""Incremental (cached) one-direction decoding step of a baseline ``Seq2Seq``.

The full-prefix helper ``Seq2Seq.next_probs`` re-runs the decoder LSTMs over the whole prefix at
every step (O(T^2) in the title length). Here each step feeds only the newest token of each
hypothesis and carries a :class:`DecodeCache`:

* per example (N rows, never repeated k times): the source key mask as an additive bias
  ``src_bias`` (N, 1, 1, Lx), ``x_max`` (N, C),
  ``prior_half`` (N, V) and the source attention's per-head keys/values ``{d}.src_k`` / ``{d}.src_v``
  (N, H, Lx, dh), projected ONCE;
* per hypothesis (N, k, D): the (h, c) states of both LSTMs ``{d}.h1 .c1 .h2 .c2``;
* read once: the SelfModulatedLayerNorm scales/shifts (functions of ``x_max`` only) and the LSTM
  weights, stepped with ``torch.nn.LSTM``'s cell equations (one step of ``nn.LSTM`` costs far
  more call overhead than the few ops of one cell).

After a beam step the per-hypothesis entries are reordered by the origin of each surviving
hypothesis (:func:`select`); finished examples are dropped from every entry (:func:`keep`).
Same weights, masks and pads as the full-prefix path, so hypotheses and scores match it up to
float rounding (a test compares both on a trained model). The k hypotheses of an example share the source keys by being
k query rows. The bidirectional k x k pair step is :mod:`kexue.models.title_gen.incremental_pair`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from kexue.models.title_gen.model import Seq2Seq


@dataclass
class DecodeCache:
    """Decoding state: ``example`` entries are (N, ...), ``hyp`` entries (N, k, ...), ``w``
    weights."""

    example: dict[str, Tensor] = field(default_factory=dict)
    hyp: dict[str, Tensor] = field(default_factory=dict)
    w: dict[str, Tensor] = field(default_factory=dict)  # weights read once (never row-selected)


@torch.no_grad()
def start(model: Seq2Seq, enc: dict[str, Tensor], k: int,
          directions: tuple[str, ...]) -> DecodeCache:
    """Empty cache (no token fed yet) for ``k`` hypotheses per example of ``enc`` (N rows), for
    the decoders of ``directions``."""
    N = enc["x_mask"].shape[0]
    w, prior_half = classifier_terms(model, enc["prior"])
    x = enc["x"]  # (N, Lx, C)
    cache = DecodeCache(example={"src_bias": source_bias(enc)[:, None, None, :],
                                 "prior_half": prior_half}, w=w)
    for d in directions:
        dec = model.decoders[d]
        cache.example[f"{d}.src_k"], cache.example[f"{d}.src_v"] = dec.src_attn.project_kv(x, x)
        for i in range(3):  # SelfModulatedLayerNorm scale/shift depend on x_max only
            norm = getattr(dec, f"norm{i}")
            cache.example[f"{d}.g{i}"] = (1 + norm.gamma(enc["x_max"])).unsqueeze(1)  # (N, 1, X)
            cache.example[f"{d}.b{i}"] = norm.beta(enc["x_max"]).unsqueeze(1)
        for layer in (1, 2):  # gates reordered to i, f, o, g (see lstm_cell)
            rnn = getattr(dec, f"rnn{layer}")
            cache.w[f"{d}.ih{layer}"] = to_ifog(rnn.weight_ih_l0).t()  # (I, 4D)
            cache.w[f"{d}.hh{layer}"] = to_ifog(rnn.weight_hh_l0).t()  # (D, 4D)
            cache.w[f"{d}.bias{layer}"] = to_ifog(rnn.bias_ih_l0 + rnn.bias_hh_l0)  # (4D,)
        zeros = x.new_zeros(N, k, dec.rnn1.hidden_size)
        cache.hyp.update({f"{d}.{s}": zeros for s in ("h1", "c1", "h2", "c2")})
    return cache


def to_ifog(w: Tensor) -> Tensor:
    """``torch.nn.LSTM``'s gate blocks (i, f, g, o) along dim 0 of a weight (4D, I) or bias
    (4D,) -> (i, f, o, g): the three sigmoid gates become one contiguous block."""
    i, f, g, o = w.chunk(4, dim=0)
    return torch.cat([i, f, o, g], dim=0)


def lstm_cell(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """``torch.nn.LSTM``'s cell equations on pre-activations ``gates`` (..., 4D) in the
    :func:`to_ifog` order: ``c' = f c + i g``, ``h' = o tanh(c')``. One sigmoid over the
    contiguous (i, f, o) block (in LSTM's own order the sigmoid ran over all four blocks and
    the g block was thrown away). -> (h', c'), each (..., D)."""
    D = c.shape[-1]
    sig = gates[..., :3 * D].sigmoid()
    c = torch.addcmul(sig[..., D:2 * D] * c, sig[..., :D], gates[..., 3 * D:].tanh())
    return sig[..., 2 * D:] * c.tanh(), c


def _cell(cache: DecodeCache, d: str, layer: int, x: Tensor) -> Tensor:
    """One step of LSTM ``layer`` of direction ``d`` (:func:`lstm_cell`; weights read once in
    :func:`start`): (N, k, I) -> (N, k, D)."""
    ex, hyp = cache.w, cache.hyp
    N, k, _ = x.shape
    h, c = hyp[f"{d}.h{layer}"], hyp[f"{d}.c{layer}"]  # (N, k, D)
    D = h.shape[-1]
    gates = torch.addmm(ex[f"{d}.bias{layer}"], x.reshape(N * k, -1), ex[f"{d}.ih{layer}"])
    gates = gates.addmm_(h.reshape(N * k, D), ex[f"{d}.hh{layer}"]).view(N, k, 4 * D)
    h, c = lstm_cell(gates, c)
    hyp[f"{d}.h{layer}"], hyp[f"{d}.c{layer}"] = h, c
    return h


def _norm(cache: DecodeCache, d: str, i: int, h: Tensor, eps: float) -> Tensor:
    """SelfModulatedLayerNorm ``norm{i}`` with the cached scale/shift: (N, k, X) -> (N, k, X)."""
    return torch.addcmul(cache.example[f"{d}.b{i}"], F.layer_norm(h, (h.shape[-1],), eps=eps),
                         cache.example[f"{d}.g{i}"])


def _states(model: Seq2Seq, cache: DecodeCache, d: str, token: Tensor) -> Tensor:
    """Feed ``token`` (N, k) to direction ``d``'s LSTMs; updates the cache -> states (N, k, D)."""
    eps = model.decoders[d].norm0.eps
    h = _norm(cache, d, 0, model.embed(token), eps)  # (N, k, E)
    h = _norm(cache, d, 1, _cell(cache, d, 1, h), eps)
    return _norm(cache, d, 2, _cell(cache, d, 2, h), eps)  # (N, k, D)


def _src_context(model: Seq2Seq, cache: DecodeCache, d: str, q: Tensor) -> Tensor:
    """Source attention of states ``q`` (N, k, D): the k hypotheses are k query rows against the
    example's cached keys -> (N, k, H*dh). The key mask is the cached additive ``src_bias``
    (0 / ``finfo.min``; equal to ``masked_softmax`` because every source has a token) and the
    1/sqrt(dh) scale is applied to the (N, H, k, dh) queries instead of the larger scores."""
    attn = model.decoders[d].src_attn
    N, k, _ = q.shape
    qh = attn.project_q(q) * (1.0 / math.sqrt(attn.head_dim))  # (N, H, k, dh)
    scores = qh @ cache.example[f"{d}.src_k"].transpose(-1, -2)  # (N, H, k, Lx)
    scores = scores + cache.example["src_bias"]  # (N, 1, 1, Lx)
    ctx = torch.softmax(scores, dim=-1) @ cache.example[f"{d}.src_v"]  # (N, H, k, dh)
    return attn.out_proj(ctx.transpose(1, 2).reshape(N, k, -1))  # (N, k, H*dh)


def source_bias(enc: dict[str, Tensor]) -> Tensor:
    """The source key mask as an additive attention bias (N, Lx): 0 where ``enc["x_mask"]``
    allows a key, ``finfo.min`` elsewhere (the same softmax as ``masked_softmax`` on rows with
    at least one key, which every source has)."""
    x = enc["x"]
    return torch.zeros_like(x[..., 0]).masked_fill(~enc["x_mask"], torch.finfo(x.dtype).min)


def classifier_terms(model: Seq2Seq, prior: Tensor) -> dict[str, Tensor]:
    """The shared classifier with the copy prior folded in, read once per search.

    ``(W f + b + prior) / 2 == (W/2) f + b/2 + prior/2`` bit for bit (halving is exact in binary
    floating point), which saves the full-size division each step.

    Returns:
        (weights ``{"cls_w": (O, V), "cls_b": (V,)}``, ``prior_half`` (N, V); zeros without
        the copy prior).
    """
    w, b = model.classifier.weight, model.classifier.bias
    if model.cfg.copy_prior:
        return {"cls_w": (w / 2).t(), "cls_b": b / 2}, prior / 2
    return {"cls_w": w.t(), "cls_b": b}, torch.zeros_like(prior)


def class_probs(w: dict[str, Tensor], prior_half: Tensor, feats: Tensor) -> Tensor:
    """Next-token probabilities from head features ``feats`` (..., N, M, O) -> (..., N, M, V)
    (M = hypotheses or pairs per example); ``prior_half`` (N, V)."""
    out = torch.addmm(w["cls_b"], feats.reshape(-1, feats.shape[-1]), w["cls_w"])
    out = out.view(*feats.shape[:-1], -1) + prior_half.unsqueeze(-2)  # (..., N, M, V)
    return torch.softmax(out.float(), dim=-1)


@torch.no_grad()
def single_step(model: Seq2Seq, cache: DecodeCache, direction: str, token: Tensor) -> Tensor:
    """Baseline model, one direction: feed ``token`` (N, k) -> next-token probs (N, k, V)."""
    if model.bidirectional:
        raise ValueError("a bidirectional model cannot decode one direction alone; use "
                         "bidirectional_beam_search (or the baseline model)")
    dec = model.decoders[direction]
    q = _states(model, cache, direction, token)  # (N, k, D)
    f = dec.out(dec.dropout(torch.cat([q, _src_context(model, cache, direction, q)], dim=-1)))
    return class_probs(cache.w, cache.example["prior_half"], F.leaky_relu(f, 0.2))  # (N, k, V)


def select(cache: DecodeCache, direction: str, origin: Tensor) -> None:
    """Reorder ``direction``'s per-hypothesis entries: new hypothesis j of example n continues
    old hypothesis ``origin[n, j]`` (origin (N, k) long)."""
    rows = torch.arange(origin.shape[0], device=origin.device).unsqueeze(1)  # (N, 1)
    prefix = f"{direction}."
    for key, v in cache.hyp.items():
        if key.startswith(prefix):
            cache.hyp[key] = v[rows, origin]


def keep(cache: DecodeCache, index: Tensor) -> None:
    """Keep only examples ``index`` (long, into the current N) in every entry."""
    for part in (cache.example, cache.hyp):
        for key, v in part.items():
            part[key] = v.index_select(0, index)
