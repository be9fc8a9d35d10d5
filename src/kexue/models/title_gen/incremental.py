"""Incremental (cached) one-direction decoding step of a baseline ``Seq2Seq``.

The full-prefix helper ``Seq2Seq.next_probs`` re-runs the decoder LSTMs over the whole prefix at
every step (O(T^2) in the title length). Here each step feeds only the newest token of each
hypothesis and carries a :class:`DecodeCache`:

* per example (N rows, never repeated k times): ``x_mask`` (N, Lx), ``x_max`` (N, C),
  ``prior`` (N, V) and the source attention's per-head keys/values ``{d}.src_k`` / ``{d}.src_v``
  (N, H, Lx, dh), projected ONCE;
* per hypothesis (N, k, D): the (h, c) states of both LSTMs ``{d}.h1 .c1 .h2 .c2``.

After a beam step the per-hypothesis entries are reordered by the origin of each surviving
hypothesis (:func:`select`); finished examples are dropped from every entry (:func:`keep`).
Same modules, masks and pads as the full-prefix path, so hypotheses and scores match it (a test
compares both on a trained model). The k hypotheses of an example share the source keys by being
k query rows. The bidirectional k x k pair step is :mod:`kexue.models.title_gen.incremental_pair`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from kexue.models.title_gen.model import DIRECTIONS, Seq2Seq


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
    return cache


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
