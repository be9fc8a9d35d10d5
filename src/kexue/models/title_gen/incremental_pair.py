"""Incremental k x k pair step of the bidirectional ``Seq2Seq``, both directions fused.

Both directions run the same layer types with their own weights, so every layer works on a
leading DIRECTION axis of size 2: the weights of the two decoders (LSTM cells included, written
out with ``torch.nn.LSTM``'s equations) are stacked once per search (:func:`start`) and applied
with one ``bmm``; the shared classifier and the softmax run once for both. Layout: hypotheses are
``(2, N, k, ...)``; pair outputs ``(2, N, own, other, ...)`` (direction 0 = L2R, 1 = R2L; for
R2L the "own" axis is the R2L hypothesis j, so ``P[1, n, j, i] = pr[n, i, j]`` of
``Seq2Seq.pair_next_probs``).

:class:`PairCache` holds, per example, the SelfModulatedLayerNorm scales/shifts (they depend on
``x_max`` only, so they are computed once), the source attention's per-head keys/values and the
prior; per hypothesis, the LSTM states and the keys/values the OTHER decoder's cross attention
reads from this hypothesis' states (one position appended per step). The output Dense is split
by its input blocks: ``W [q; cross; src] = W_q q + W_s src`` (own hypothesis, k rows) ``+ W_c
cross`` (k*k pairs). Same modules and masks as the full-prefix path; results agree with it up to
float rounding (summation order), which the identity test bounds.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from kexue.models.title_gen.incremental import classifier_terms, lstm_cell, source_bias, to_ifog
from kexue.models.title_gen.model import DIRECTIONS, PAD, Seq2Seq
from kexue.nn import softmax_last


@dataclass
class PairCache:
    """``example``: (2, N, ...) or (N, ...); ``hyp``: (2, N, k, ...); ``w``: stacked weights."""

    example: dict[str, Tensor] = field(default_factory=dict)
    hyp: dict[str, Tensor] = field(default_factory=dict)
    w: dict[str, Tensor] = field(default_factory=dict)


# model -> (weight signature, stacked weights): a search starts once per batch, and stacking
# ~20 parameter tensors costs about as much as a whole decoding step at the CPU sizes
_STACKED: weakref.WeakKeyDictionary[Seq2Seq, tuple[tuple, dict[str, Tensor]]] = (
    weakref.WeakKeyDictionary())


def _signature(model: Seq2Seq) -> tuple:
    """Changes whenever a decoder parameter is replaced, moved, cast or updated in place
    (``Tensor._version`` counts in-place writes: optimizer steps, ``load_state_dict``)."""
    return tuple((p.data_ptr(), p._version, p.dtype, p.device)
                 for p in model.decoders.parameters())


def _stacked_weights(model: Seq2Seq) -> dict[str, Tensor]:
    """Per-direction weights stacked on a leading axis of 2, transposed for ``bmm``; built
    once per state of the weights (:func:`_signature`) and reused by later searches."""
    sig = _signature(model)
    hit = _STACKED.get(model)
    if hit is not None and hit[0] == sig:
        return hit[1]
    with torch.no_grad():
        out = _stack(model)
    _STACKED[model] = (sig, out)
    return out


def _stack(model: Seq2Seq) -> dict[str, Tensor]:
    decs = [model.decoders[d] for d in DIRECTIONS]
    for dec in decs:
        for attn in (dec.cross, dec.src_attn):
            if attn.q_proj.bias is not None or not isinstance(attn.out_proj, torch.nn.Identity):
                raise ValueError("the fused pair step assumes Su's attention (bias-free q/k/v "
                                 "projections, no output projection); decode with cache=False")
    D = decs[0].rnn1.hidden_size
    Ac, As = decs[0].cross.output_size, decs[0].src_attn.output_size
    # queries: [src | cross] of the own states
    wq = torch.stack([torch.cat([d.src_attn.q_proj.weight, d.cross.q_proj.weight]).t() for d in decs])
    # decoder e's cross keys/values of the OTHER direction's states: applied to flipped states
    wkv = torch.stack([torch.cat([d.cross.k_proj.weight, d.cross.v_proj.weight]).t() for d in decs])
    w_out = [d.out.weight for d in decs]  # (O, D + Ac + As), input order [q, cross, src]
    w_qs = torch.stack([torch.cat([w[:, :D], w[:, D + Ac:D + Ac + As]], 1).t() for w in w_out])
    w_c = torch.stack([w[:, D:D + Ac].t() for w in w_out])
    b_o = torch.stack([d.out.bias for d in decs]).unsqueeze(1)  # (2, 1, O)
    out = {"q": wq, "kv": wkv, "qs": w_qs, "c": w_c, "bo": b_o}
    for layer in (1, 2):  # single-layer LSTMs, both bias vectors summed, gates as i, f, o, g
        rnns = [getattr(d, f"rnn{layer}") for d in decs]
        out[f"ih{layer}"] = torch.stack([to_ifog(r.weight_ih_l0).t() for r in rnns])  # (2, I, 4D)
        out[f"hh{layer}"] = torch.stack([to_ifog(r.weight_hh_l0).t() for r in rnns])  # (2, D, 4D)
        out[f"b{layer}"] = torch.stack([to_ifog(r.bias_ih_l0 + r.bias_hh_l0)
                                        for r in rnns]).unsqueeze(1)
    return out


@torch.no_grad()
def start(model: Seq2Seq, enc: dict[str, Tensor], k: int) -> PairCache:
    """Empty cache for ``k`` L2R and ``k`` R2L hypotheses per example of ``enc`` (N rows)."""
    if not model.bidirectional:
        raise ValueError("the pair step needs the bidirectional model (cross_attention: true)")
    decs = [model.decoders[d] for d in DIRECTIONS]
    x, x_max = enc["x"], enc["x_max"]  # (N, Lx, C), (N, C)
    N = x.shape[0]
    w_cls, prior_half = classifier_terms(model, enc["prior"])
    ex: dict[str, Tensor] = {"bias_prior": w_cls["cls_b"] + prior_half,
                             "src_bias": source_bias(enc)}  # (N, Lx)
    for i, name in enumerate(("norm0", "norm1", "norm2")):
        norms = [getattr(d, name) for d in decs]
        ex[f"g{i}"] = torch.stack([1 + n.gamma(x_max) for n in norms]).unsqueeze(2)  # (2,N,1,.)
        ex[f"b{i}"] = torch.stack([n.beta(x_max) for n in norms]).unsqueeze(2)
    kv = [d.src_attn.project_kv(x, x) for d in decs]  # (N, H, Lx, dh) each
    ex["src_k"], ex["src_v"] = torch.stack([a for a, _ in kv]), torch.stack([b for _, b in kv])
    D, H, dh = decs[0].rnn1.hidden_size, decs[0].cross.heads, decs[0].cross.head_dim
    zeros = x.new_zeros(2, N, k, D)
    hyp = {s: zeros for s in ("h1", "c1", "h2", "c2")}
    hyp["ck"] = x.new_zeros(2, N, k, H, 0, dh)  # [e, n, j]: decoder e's keys of other's hyp j
    hyp["cv"] = x.new_zeros(2, N, k, H, 0, dh)
    return PairCache(ex, hyp, {**_stacked_weights(model), **w_cls})


def _norm(h: Tensor, cache: PairCache, i: int, eps: float) -> Tensor:
    """SelfModulatedLayerNorm with the cached scale/shift: (2, N, k, X) -> (2, N, k, X)."""
    return torch.addcmul(cache.example[f"b{i}"], F.layer_norm(h, (h.shape[-1],), eps=eps),
                         cache.example[f"g{i}"])


def _cells(cache: PairCache, layer: int, x: Tensor) -> Tensor:
    """One step of layer ``layer`` (1 or 2) of BOTH directions' LSTMs as one stacked cell
    (:func:`~kexue.models.title_gen.incremental.lstm_cell`): (2, N, k, I) -> (2, N, k, D)."""
    _, N, k, _ = x.shape
    w, hyp = cache.w, cache.hyp
    h, c = hyp[f"h{layer}"], hyp[f"c{layer}"]  # (2, N, k, D)
    D = h.shape[-1]
    gates = torch.baddbmm(w[f"b{layer}"], x.reshape(2, N * k, -1), w[f"ih{layer}"])
    gates = gates.baddbmm_(h.reshape(2, N * k, D), w[f"hh{layer}"]).view(2, N, k, 4 * D)
    h, c = lstm_cell(gates, c)
    hyp[f"h{layer}"], hyp[f"c{layer}"] = h, c
    return h


@torch.no_grad()
def pair_step(model: Seq2Seq, cache: PairCache, hyps: Tensor) -> Tensor:
    """Feed the newest tokens ``hyps[..., -1]`` (hyps (2, N, k, t)) -> pair probabilities
    (2, N, own, other, V): ``[0, n, i, j]`` = L2R_i attending to R2L_j, ``[1, n, j, i]`` = R2L_j
    attending to L2R_i. Eval mode (dropout is not applied)."""
    dec = model.decoders["l2r"]
    _, N, k, _ = hyps.shape
    eps = dec.norm0.eps
    h = _norm(model.embed(hyps[..., -1]), cache, 0, eps)  # (2, N, k, E)
    h = _norm(_cells(cache, 1, h), cache, 1, eps)
    q = _norm(_cells(cache, 2, h), cache, 2, eps)  # (2, N, k, D)
    D, w = q.shape[-1], cache.w
    H, dh = dec.cross.heads, dec.cross.head_dim
    As = dec.src_attn.output_size
    # the other decoder's cross keys/values of these new states (flip: e reads the other's)
    kv = torch.bmm(q.flip(0).reshape(2, N * k, D), w["kv"]).view(2, N, k, 2, H, 1, dh)
    cache.hyp["ck"] = torch.cat([cache.hyp["ck"], kv[:, :, :, 0]], dim=4)  # (2, N, k, H, t, dh)
    cache.hyp["cv"] = torch.cat([cache.hyp["cv"], kv[:, :, :, 1]], dim=4)
    qq = torch.bmm(q.reshape(2, N * k, D), w["q"])  # (2, N*k, As + Ac)
    # source attention: the k hypotheses are k query rows against the example's keys
    # (queries scaled by 1/sqrt(dh) instead of the larger score tensors; exact for dh = 4^n)
    qq = qq * (1.0 / math.sqrt(dh))
    sq = qq[..., :As].reshape(2, N, k, H, dh).transpose(2, 3)  # (2, N, H, k, dh)
    # (masks as additive 0 / finfo.min biases: no row is fully masked -- every source has a
    # token and every hypothesis its start id -- so this equals masked_softmax)
    scores = sq @ cache.example["src_k"].transpose(-1, -2)  # (2, N, H, k, Lx)
    scores = scores + cache.example["src_bias"][None, :, None, None, :]
    src = torch.softmax(scores, dim=-1) @ cache.example["src_v"]  # (2, N, H, k, dh)
    src = src.transpose(2, 3).reshape(2, N, k, As)  # (2, N, k, As)
    # cross attention of own hypothesis o to the other direction's hypothesis x: batched over
    # (e, n, x, h) against the cache as stored, (o, t) scores per batch
    cq = qq[..., As:].reshape(2, N, k, H, dh).transpose(2, 3).unsqueeze(2)  # (2, N, 1, H, k, dh)
    scores = cq @ cache.hyp["ck"].transpose(-1, -2)  # (2, N, k_x, H, k_o, t)
    pad = (hyps == PAD).flip(0).to(scores.dtype) * torch.finfo(scores.dtype).min  # (2, N, k, t)
    attn = softmax_last(scores + pad[:, :, :, None, None, :])  # rows of t < 16 at first
    cross = (attn @ cache.hyp["cv"]).permute(0, 1, 4, 2, 3, 5)  # (2, N, k_o, k_x, H, dh)
    own = torch.baddbmm(w["bo"], torch.cat([q, src], -1).reshape(2, N * k, -1), w["qs"])
    f = own.view(2, N, k, 1, -1) + torch.bmm(cross.reshape(2, N * k * k, H * dh), w["c"]).view(
        2, N, k, k, -1)  # (2, N, k, k, O)
    # classifier: one mm for all 2*N*k*k pairs, bias and copy prior added in place (one
    # full-size temporary instead of three)
    logits = torch.mm(F.leaky_relu(f, 0.2).view(2 * N * k * k, -1), cache.w["cls_w"])
    logits = logits.view(2, N, k * k, -1).add_(cache.example["bias_prior"].unsqueeze(1))
    return torch.softmax(logits, dim=-1).view(2, N, k, k, -1)


def select(cache: PairCache, origin: Tensor) -> None:
    """Reorder after a beam step: new hypothesis j of (direction e, example n) continues old
    ``origin[e, n, j]`` (origin (2, N, k)). ``ck``/``cv`` of decoder e belong to the OTHER
    direction's hypotheses, so they follow the flipped origin. One ``index_select`` per entry
    on its flattened (2*N*k) hypothesis rows (a copy of contiguous rows, cheaper than
    broadcast advanced indexing)."""
    E, N, k = origin.shape
    base = torch.arange(0, E * N * k, k, device=origin.device).view(E, N, 1)  # (2, N, 1)
    own, other = (base + origin).view(-1), (base + origin.flip(0)).view(-1)  # (2*N*k,)
    for key, v in cache.hyp.items():
        rows = v.reshape(E * N * k, *v.shape[3:]).index_select(
            0, other if key in ("ck", "cv") else own)
        cache.hyp[key] = rows.view(v.shape)


def keep(cache: PairCache, index: Tensor) -> None:
    """Keep only examples ``index`` (long, into the current N) in every entry."""
    for key, v in cache.example.items():
        cache.example[key] = v.index_select(0 if key in ("src_bias", "bias_prior") else 1, index)
    for key, v in cache.hyp.items():
        cache.hyp[key] = v.index_select(1, index)
