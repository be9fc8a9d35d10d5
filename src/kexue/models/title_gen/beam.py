"""Batched decoding: greedy, beam search per direction, and Su's bidirectional beam search.

All searches work on a batch of B sources at once and on any ``model`` with

* ``next_probs(enc, y (N, t), direction) -> (N, V)`` probabilities (one direction alone), and/or
* ``pair_next_probs(enc_pairs, yl (N, k, t), yr (N, k, t)) -> (pl, pr)``, each (N, k, k, V),
  where ``pl[n, i, j]`` is L2R_i's next-token distribution when it attends to R2L_j,

where ``enc`` is a dict of batch-first tensors (the encoded source). The source is encoded once;
its rows are repeated k (or k*k) times once, and re-indexed only when finished examples drop out.

Scores follow Su's ``gen_sent``: cumulative ``log(p + 1e-6)``. Excluded ids: L2R never emits
{pad, unk, start}; R2L never emits {pad, unk, 3}, and its end token is id 2.

Deviation from Su's ``gen_sent`` (documented): a hypothesis that has emitted its end token is
*frozen* (kept with its score, extended by pad, expanded into a single candidate) instead of being
extended past its end. The stop rules are Su's: the search stops for an example when the best L2R
hypothesis has ended and scores >= the best R2L score (returned as is), or symmetrically for R2L
(returned reversed); at ``max_len`` the higher-scoring direction's best hypothesis is returned.
The single-direction beam stops when its best hypothesis has ended, so beam size 1 == greedy.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

PAD, UNK, START, END = 0, 1, 2, 3
EPS = 1e-6
# direction -> (start id, end id, excluded ids)
SPEC: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "l2r": (START, END, (PAD, UNK, START)),
    "r2l": (END, START, (PAD, UNK, END)),
}


def repeat_encoded(enc: dict[str, Any], times: int) -> dict[str, Any]:
    """Repeat every row of ``enc`` ``times`` times consecutively (row b -> b*times .. b*times+times-1)."""
    return {key: (v.repeat_interleave(times, dim=0) if isinstance(v, Tensor) else v)
            for key, v in enc.items()}


def _rows(enc: dict[str, Any], keep: Tensor, per: int) -> dict[str, Any]:
    """Keep examples ``keep`` (indices into the current batch) of an enc repeated ``per`` times."""
    idx = (keep.view(-1, 1) * per + torch.arange(per, device=keep.device)).view(-1)
    return {key: (v.index_select(0, idx) if isinstance(v, Tensor) else v) for key, v in enc.items()}


def strip(ids: list[int], direction: str) -> list[int]:
    """Hypothesis ids -> title ids in reading order (drop start/end/pad; R2L reversed back)."""
    start, end, _ = SPEC[direction]
    out: list[int] = []
    for i in ids[1:] if ids and ids[0] == start else ids:
        if i in (end, PAD):
            break
        out.append(int(i))
    return out[::-1] if direction == "r2l" else out


def _log_probs(probs: Tensor, direction: str) -> Tensor:
    """``log(p + 1e-6)`` with the direction's excluded ids set to -inf. (…, V) -> (…, V)."""
    logp = torch.log(probs.float() + EPS)
    logp[..., list(SPEC[direction][2])] = float("-inf")
    return logp


def _expand(hyps: Tensor, scores: Tensor, finished: Tensor, logp: Tensor, k: int,
            end: int) -> tuple[Tensor, Tensor, Tensor]:
    """One beam step per example: top-k of the k*k candidates ``prev + log(p + 1e-6)``.

    Args:
        hyps: (B, k, t); scores: (B, k); finished: (B, k) bool; logp: (B, k, V).

    Returns:
        New (hyps (B, k, t+1), scores (B, k), finished (B, k)).
    """
    B, kk, t = hyps.shape
    top_lp, top_id = logp.topk(min(k, logp.shape[-1]), dim=-1)  # (B, k, k')
    cand = scores.unsqueeze(-1) + top_lp  # (B, k, k')
    # a finished hypothesis survives as ONE candidate (itself + pad, same score)
    frozen = torch.full_like(cand, float("-inf"))
    frozen[..., 0] = scores
    cand = torch.where(finished.unsqueeze(-1), frozen, cand)
    top_id = torch.where(finished.unsqueeze(-1), torch.full_like(top_id, PAD), top_id)
    new_scores, flat = cand.view(B, -1).topk(k, dim=-1)  # (B, k)
    origin = flat // top_id.shape[-1]  # (B, k) which hypothesis it extends
    token = top_id.view(B, -1).gather(1, flat)  # (B, k)
    hyps = torch.cat([hyps.gather(1, origin.unsqueeze(-1).expand(B, k, t)), token.unsqueeze(-1)], -1)
    finished = finished.gather(1, origin) | (token == end)
    return hyps, new_scores, finished


def _init(B: int, k: int, start: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    hyps = torch.full((B, k, 1), start, dtype=torch.long, device=device)
    scores = torch.full((B, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # the k start hypotheses are identical: expand only the first
    return hyps, scores, torch.zeros(B, k, dtype=torch.bool, device=device)


def beam_search(model: Any, enc: dict[str, Tensor], direction: str = "l2r", beam_size: int = 3,
                max_len: int = 64) -> list[list[int]]:
    """Batched beam search of one direction (baseline model).

    Args:
        model: has ``next_probs(enc, y, direction)``.
        enc: encoded sources, B rows.
        direction: ``l2r`` or ``r2l`` (R2L outputs are reversed back to reading order).
        beam_size: k (1 = greedy).
        max_len: maximum number of generated tokens (including the end token).

    Returns:
        B title id lists (no start/end ids), in reading order.
    """
    if direction not in SPEC:
        raise ValueError(f"direction must be l2r or r2l, got {direction!r}")
    start, end, _ = SPEC[direction]
    B, k = enc["x_max"].shape[0], beam_size
    device = enc["x_max"].device
    hyps, scores, finished = _init(B, k, start, device)
    enc_k = repeat_encoded(enc, k)
    alive = torch.arange(B, device=device)  # original example ids still searching
    results: list[list[int] | None] = [None] * B
    for step in range(max_len):
        n, t = hyps.shape[0], hyps.shape[-1]
        probs = model.next_probs(enc_k, hyps.view(n * k, t), direction).view(n, k, -1)
        hyps, scores, finished = _expand(hyps, scores, finished, _log_probs(probs, direction), k, end)
        best = scores.argmax(dim=1)  # (n,)
        done = finished.gather(1, best.unsqueeze(1)).squeeze(1) | (step == max_len - 1)
        for r in done.nonzero().flatten().tolist():
            results[int(alive[r])] = strip(hyps[r, best[r]].tolist(), direction)
        if bool(done.all()):
            break
        keep = (~done).nonzero().flatten()
        if len(keep) < n:
            hyps, scores, finished, alive = hyps[keep], scores[keep], finished[keep], alive[keep]
            enc_k = _rows(enc_k, keep, k)
    return [r if r is not None else [] for r in results]


def greedy_decode(model: Any, enc: dict[str, Tensor], direction: str = "l2r",
                  max_len: int = 64) -> list[list[int]]:
    """Batched greedy decoding of one direction: argmax over the allowed ids until the end id."""
    start, end, _ = SPEC[direction]
    B = enc["x_max"].shape[0]
    device = enc["x_max"].device
    y = torch.full((B, 1), start, dtype=torch.long, device=device)
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    for _ in range(max_len):
        logp = _log_probs(model.next_probs(enc, y, direction), direction)  # (B, V)
        token = logp.argmax(dim=-1).masked_fill(finished, PAD)
        y = torch.cat([y, token.unsqueeze(1)], dim=1)
        finished |= token == end
        if bool(finished.all()):
            break
    return [strip(row, direction) for row in y.tolist()]


def bidirectional_beam_search(model: Any, enc: dict[str, Tensor], beam_size: int = 3,
                              max_len: int = 64) -> tuple[list[list[int]], list[str]]:
    """Su's bidirectional beam search (``gen_sent``), batched over sources and k*k pairs.

    Each step runs ONE ``pair_next_probs`` forward on all B*k*k (L2R_i, R2L_j) pairs (the source
    encoding is repeated k*k times once, never re-encoded), averages L2R_i's probabilities over
    the R2L hypotheses j (and R2L_j's over i), and does a standard beam step per direction.

    Returns:
        (titles, directions): B title id lists in reading order, and which direction each came
        from (``l2r`` / ``r2l``).
    """
    B, k = enc["x_max"].shape[0], beam_size
    device = enc["x_max"].device
    yl, sl, fl = _init(B, k, START, device)
    yr, sr, fr = _init(B, k, END, device)
    enc_p = repeat_encoded(enc, k * k)
    alive = torch.arange(B, device=device)
    results: list[list[int] | None] = [None] * B
    chosen: list[str] = [""] * B
    for step in range(max_len):
        pl, pr = model.pair_next_probs(enc_p, yl, yr)  # (n, k, k, V) each
        pl = pl.mean(dim=2)  # L2R_i averaged over the R2L hypotheses j -> (n, k, V)
        pr = pr.mean(dim=1)  # R2L_j averaged over the L2R hypotheses i -> (n, k, V)
        yl, sl, fl = _expand(yl, sl, fl, _log_probs(pl, "l2r"), k, END)
        yr, sr, fr = _expand(yr, sr, fr, _log_probs(pr, "r2l"), k, START)
        lb, rb = sl.argmax(1), sr.argmax(1)  # (n,)
        ls, rs = sl.gather(1, lb[:, None])[:, 0], sr.gather(1, rb[:, None])[:, 0]
        l_end = fl.gather(1, lb[:, None])[:, 0]
        r_end = fr.gather(1, rb[:, None])[:, 0]
        last = step == max_len - 1
        take_l = (l_end & (ls >= rs)) | (torch.tensor(last, device=device) & (ls >= rs))
        take_r = ~take_l & ((r_end & (rs >= ls)) | torch.tensor(last, device=device))
        done = take_l | take_r
        for r in done.nonzero().flatten().tolist():
            b = int(alive[r])
            if bool(take_l[r]):
                results[b], chosen[b] = strip(yl[r, lb[r]].tolist(), "l2r"), "l2r"
            else:
                results[b], chosen[b] = strip(yr[r, rb[r]].tolist(), "r2l"), "r2l"
        if bool(done.all()):
            break
        keep = (~done).nonzero().flatten()
        if len(keep) < yl.shape[0]:
            yl, sl, fl, yr, sr, fr = yl[keep], sl[keep], fl[keep], yr[keep], sr[keep], fr[keep]
            alive = alive[keep]
            enc_p = _rows(enc_p, keep, k * k)
    return [r if r is not None else [] for r in results], chosen


def joint_greedy(model: Any, enc: dict[str, Tensor], max_len: int = 64) -> tuple[Tensor, Tensor]:
    """Greedy decoding of BOTH directions in lockstep (k = 1 pairs), each attending to the
    other's generated prefix, until both have ended. Used to make the second-pass context.

    Returns:
        (yl, yr): (B, t) full id sequences ``[2] + gen + [3]`` and ``[3] + gen_r2l + [2]``,
        right-padded with pad after each end.
    """
    B = enc["x_max"].shape[0]
    device = enc["x_max"].device
    yl = torch.full((B, 1, 1), START, dtype=torch.long, device=device)
    yr = torch.full((B, 1, 1), END, dtype=torch.long, device=device)
    fl = torch.zeros(B, dtype=torch.bool, device=device)
    fr = torch.zeros(B, dtype=torch.bool, device=device)
    for _ in range(max_len):
        pl, pr = model.pair_next_probs(enc, yl, yr)  # (B, 1, 1, V)
        tl = _log_probs(pl[:, 0, 0], "l2r").argmax(-1).masked_fill(fl, PAD)
        tr = _log_probs(pr[:, 0, 0], "r2l").argmax(-1).masked_fill(fr, PAD)
        yl = torch.cat([yl, tl.view(B, 1, 1)], -1)
        yr = torch.cat([yr, tr.view(B, 1, 1)], -1)
        fl |= tl == END
        fr |= tr == START
        if bool((fl & fr).all()):
            break
    return yl[:, 0], yr[:, 0]
