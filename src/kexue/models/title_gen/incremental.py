"""Incremental (cached) decoding steps of :class:`~kexue.models.title_gen.model.Seq2Seq`.

The full-prefix helpers (``Seq2Seq.next_probs`` / ``pair_next_probs``) re-run both decoder LSTMs
over the whole prefix at every step (O(T^2) in the title length). Here each step feeds only the
newest token of each hypothesis and carries a :class:`DecodeCache`:

* per example (N rows, never repeated k or k*k times): ``x_mask`` (N, Lx), ``x_max`` (N, C),
  ``prior`` (N, V) and, per direction, the source attention's per-head keys/values
  ``{d}.src_k`` / ``{d}.src_v`` (N, H, Lx, dh), projected ONCE;
* per hypothesis (N, k, ...): the (h, c) states of both LSTMs ``{d}.h1 .c1 .h2 .c2`` (N, k, D)
  and, in the bidirectional model, the OTHER decoder's cross-attention keys/values of this
  direction's states so far ``{d}.ck`` / ``{d}.cv`` (N, k, H, t, dh) with their valid mask
  ``{d}.m`` (N, k, t) (input token != pad), appended one position per step.

After a beam step the per-hypothesis entries are reordered by the origin of each surviving
hypothesis (:func:`select`); finished examples are dropped from every entry (:func:`keep`).
The arithmetic is the full-prefix one (same modules, same masks, pads fed like the full-prefix
path feeds them), so hypotheses and scores match it up to float rounding (a test compares both
on a trained model). The k hypotheses of an example share the source keys by putting them on the
query axis, and the k x k pair scores come from one einsum, so nothing is repeated k*k times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from kexue.models.title_gen.model import DIRECTIONS, PAD, Seq2Seq
from kexue.nn.masks import masked_softmax


@dataclass
class DecodeCache:
    """Decoding state: ``example`` entries are (N, ...), ``hyp`` entries (N, k, ...)."""

    k: int
    example: dict[str, Tensor] = field(default_factory=dict)
    hyp: dict[str, Tensor] = field(default_factory=dict)


def start(model: Seq2Seq, enc: dict[str, Tensor], k: int,
          directions: tuple[str, ...] = DIRECTIONS) -> DecodeCache:
    """Empty cache (no token fed yet) for ``k`` hypotheses per example of ``enc`` (N rows)."""
    N, Lx = enc["x_mask"].shape
    cache = DecodeCache(k, {key: enc[key] for key in ("x_mask", "x_max", "prior")})
    x = enc["x"]  # (N, Lx, C)
    for d in directions:
        dec = model.decoders[d]
        cache.example[f"{d}.src_k"], cache.example[f"{d}.src_v"] = dec.src_attn.project_kv(x, x)
        D = dec.rnn1.hidden_size
        zeros = x.new_zeros(N, k, D)
        cache.hyp.update({f"{d}.{s}": zeros for s in ("h1", "c1", "h2", "c2")})
        if model.bidirectional:
            other = model.decoders[_other(d)].cross
            cache.hyp[f"{d}.ck"] = x.new_zeros(N, k, other.heads, 0, other.head_dim)
            cache.hyp[f"{d}.cv"] = x.new_zeros(N, k, other.heads, 0, other.head_dim)
            cache.hyp[f"{d}.m"] = torch.zeros(N, k, 0, dtype=torch.bool, device=x.device)
    return cache


def _other(direction: str) -> str:
    return "r2l" if direction == "l2r" else "l2r"


def _lstm_step(rnn: torch.nn.LSTM, h: Tensor, state: tuple[Tensor, Tensor]
               ) -> tuple[Tensor, Tensor, Tensor]:
    """One LSTM step: ``h`` (N, k, I), state (N, k, D) x 2 -> (out, h, c), each (N, k, D)."""
    N, k, _ = h.shape
    hx = (state[0].reshape(1, N * k, -1), state[1].reshape(1, N * k, -1))
    out, (h1, c1) = rnn(h.reshape(N * k, 1, -1), hx)  # (N*k, 1, D)
    D = out.shape[-1]
    return out.view(N, k, D), h1.view(N, k, D), c1.view(N, k, D)


def _states(model: Seq2Seq, cache: DecodeCache, d: str, token: Tensor) -> Tensor:
    """Feed ``token`` (N, k) to direction ``d``'s LSTMs; updates the cache -> states (N, k, D).

    ``SelfModulatedLayerNorm`` broadcasts ``x_max`` (N, C) over the k axis, so its MLPs run
    once per example, as in a teacher-forced row.
    """
    dec, hyp, x_max = model.decoders[d], cache.hyp, cache.example["x_max"]
    h = dec.norm0(model.embed(token), x_max)  # (N, k, E)
    h, hyp[f"{d}.h1"], hyp[f"{d}.c1"] = _lstm_step(dec.rnn1, h, (hyp[f"{d}.h1"], hyp[f"{d}.c1"]))
    h = dec.norm1(h, x_max)
    h, hyp[f"{d}.h2"], hyp[f"{d}.c2"] = _lstm_step(dec.rnn2, h, (hyp[f"{d}.h2"], hyp[f"{d}.c2"]))
    return dec.norm2(h, x_max)  # (N, k, D)


def _src_context(model: Seq2Seq, cache: DecodeCache, d: str, q: Tensor) -> Tensor:
    """Source attention of states ``q`` (N, k, D): the k hypotheses are k query rows against the
    example's cached keys -> (N, k, H*dh)."""
    attn = model.decoders[d].src_attn
    N, k, _ = q.shape
    qh = attn.project_q(q)  # (N, H, k, dh)
    allowed = cache.example["x_mask"][:, None, None, :]  # (N, 1, 1, Lx)
    ctx = attn.attend(qh, cache.example[f"{d}.src_k"], cache.example[f"{d}.src_v"], allowed)
    return attn.out_proj(ctx.transpose(1, 2).reshape(N, k, -1))  # (N, k, H*dh)


def _push_cross(model: Seq2Seq, cache: DecodeCache, d: str, h: Tensor, token: Tensor) -> None:
    """Append the other decoder's cross keys/values of ``d``'s new states ``h`` (N, k, D)."""
    other = model.decoders[_other(d)].cross
    N, k, D = h.shape
    kh, vh = other.project_kv(h.reshape(N * k, 1, D), h.reshape(N * k, 1, D))  # (N*k, H, 1, dh)
    hyp = cache.hyp
    hyp[f"{d}.ck"] = torch.cat([hyp[f"{d}.ck"], kh.view(N, k, *kh.shape[1:])], dim=3)
    hyp[f"{d}.cv"] = torch.cat([hyp[f"{d}.cv"], vh.view(N, k, *vh.shape[1:])], dim=3)
    hyp[f"{d}.m"] = torch.cat([hyp[f"{d}.m"], (token != PAD).unsqueeze(-1)], dim=2)


def _probs(model: Seq2Seq, feats: Tensor, prior: Tensor) -> Tensor:
    """Shared classifier + copy prior + softmax: feats (N, ..., O), prior (N, V) -> (N, ..., V)."""
    out = model.classifier(feats)
    if model.cfg.copy_prior:
        out = (out + prior.view(prior.shape[0], *([1] * (out.dim() - 2)), -1)) / 2
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
    return _probs(model, F.leaky_relu(f, 0.2), cache.example["prior"])  # (N, k, V)


def _pair_features(model: Seq2Seq, cache: DecodeCache, d: str, q: Tensor) -> Tensor:
    """Head features of ``d``'s k hypotheses against each of the other direction's k:
    q (N, k, D) -> (N, k_l2r, k_r2l, O) (pair order (n, i, j): i = L2R, j = R2L)."""
    dec, o = model.decoders[d], _other(d)
    N, k, D = q.shape
    attn = dec.cross
    qh = attn.project_q(q.reshape(N * k, 1, D)).view(N, k, attn.heads, attn.head_dim)  # (N,k,H,dh)
    kh, vh, m = cache.hyp[f"{o}.ck"], cache.hyp[f"{o}.cv"], cache.hyp[f"{o}.m"]  # (N,k,H,t,dh)
    if d == "l2r":  # own hypothesis i is the row, other's j the column
        scores = torch.einsum("nihd,njhtd->nijht", qh, kh)
        allowed = m[:, None, :, None, :]  # (N, 1, k, 1, t)
        ctx_of = lambda a: torch.einsum("nijht,njhtd->nijhd", a, vh)  # noqa: E731
        own = lambda z: z[:, :, None].expand(N, k, k, z.shape[-1])  # noqa: E731
    else:
        scores = torch.einsum("njhd,nihtd->nijht", qh, kh)
        allowed = m[:, :, None, None, :]  # (N, k, 1, 1, t)
        ctx_of = lambda a: torch.einsum("nijht,nihtd->nijhd", a, vh)  # noqa: E731
        own = lambda z: z[:, None].expand(N, k, k, z.shape[-1])  # noqa: E731
    probs = masked_softmax(scores / math.sqrt(attn.head_dim), allowed, dim=-1)  # (N,k,k,H,t)
    cross = attn.out_proj(ctx_of(probs).reshape(N, k, k, -1))  # (N, k, k, H*dh)
    src = _src_context(model, cache, d, q)  # (N, k, A)
    f = dec.out(dec.dropout(torch.cat([own(q), cross, own(src)], dim=-1)))  # (N, k, k, O)
    return F.leaky_relu(f, 0.2)


@torch.no_grad()
def pair_step(model: Seq2Seq, cache: DecodeCache, token_l: Tensor, token_r: Tensor
              ) -> tuple[Tensor, Tensor]:
    """Bidirectional model: feed the newest L2R / R2L tokens (N, k) each -> (pl, pr), each
    (N, k, k, V): ``pl[n, i, j]`` = L2R_i's next-token probs attending to R2L_j, ``pr[n, i, j]``
    = R2L_j's attending to L2R_i (as ``Seq2Seq.pair_next_probs``)."""
    ql = _states(model, cache, "l2r", token_l)  # (N, k, D)
    qr = _states(model, cache, "r2l", token_r)
    _push_cross(model, cache, "l2r", ql, token_l)
    _push_cross(model, cache, "r2l", qr, token_r)
    prior = cache.example["prior"]
    pl = _probs(model, _pair_features(model, cache, "l2r", ql), prior)
    pr = _probs(model, _pair_features(model, cache, "r2l", qr), prior)
    return pl, pr


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
