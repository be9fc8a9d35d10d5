"""Batched decoding: greedy, beam search per direction, and Su's bidirectional beam search.

All searches work on a batch of B sources at once and on any ``model`` with

* ``next_probs(enc, y (N, t), direction) -> (N, V)`` probabilities (one direction alone), and/or
* ``pair_next_probs(enc_pairs, yl (N, k, t), yr (N, k, t)) -> (pl, pr)``, each (N, k, k, V),
  where ``pl[n, i, j]`` is L2R_i's next-token distribution when it attends to R2L_j,

where ``enc`` is a dict of batch-first tensors (the encoded source), or, with ``cache=True`` (the
default; the pipeline's path), on a :class:`~kexue.models.title_gen.model.Seq2Seq` decoded
incrementally (:mod:`kexue.models.title_gen.incremental`: cached LSTM states and source / cross
attention keys, only the newest token fed each step; per-token cost flat in the title length).
``cache=False`` is the full-prefix reference (re-runs the prefix each step, O(T^2)); both give
the same hypotheses and scores (test). See :mod:`kexue.models.title_gen.steppers`.

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

from kexue.models.title_gen import steppers
from kexue.models.title_gen.steppers import repeat_encoded

__all__ = ["beam_search", "bidirectional_beam_search", "greedy_decode", "joint_greedy",
           "repeat_encoded", "strip"]

PAD, UNK, START, END = 0, 1, 2, 3
EPS = 1e-6
# direction -> (start id, end id, excluded ids)
SPEC: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "l2r": (START, END, (PAD, UNK, START)),
    "r2l": (END, START, (PAD, UNK, END)),
}


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
            end: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One beam step per example: top-k of the k*k candidates ``prev + log(p + 1e-6)``.

    Args:
        hyps: (B, k, t); scores: (B, k); finished: (B, k) bool; logp: (B, k, V).

    Returns:
        New (hyps (B, k, t+1), scores (B, k), finished (B, k)) and ``origin`` (B, k): the old
        hypothesis each new one extends (to reorder cached decoder state).
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
    return hyps, new_scores, finished, origin


def _init(B: int, k: int, start: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    hyps = torch.full((B, k, 1), start, dtype=torch.long, device=device)
    scores = torch.full((B, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # the k start hypotheses are identical: expand only the first
    return hyps, scores, torch.zeros(B, k, dtype=torch.bool, device=device)


def beam_search(model: Any, enc: dict[str, Tensor], direction: str = "l2r", beam_size: int = 3,
                max_len: int = 64, *, cache: bool = True, with_scores: bool = False) -> Any:
    """Batched beam search of one direction (baseline model).

    Args:
        model: a baseline ``Seq2Seq`` (``cache=True``), or anything with
            ``next_probs(enc, y, direction)`` (``cache=False``, full-prefix reference).
        enc: encoded sources, B rows.
        direction: ``l2r`` or ``r2l`` (R2L outputs are reversed back to reading order).
        beam_size: k (1 = greedy).
        max_len: maximum number of generated tokens (including the end token).
        cache: incremental decoding (default) or the full-prefix reference.
        with_scores: also return each returned hypothesis' cumulative ``log(p + 1e-6)``.

    Returns:
        B title id lists (no start/end ids), in reading order; with ``with_scores``,
        ``(titles, scores)``.
    """
    if direction not in SPEC:
        raise ValueError(f"direction must be l2r or r2l, got {direction!r}")
    start, end, _ = SPEC[direction]
    B, k = enc["x_max"].shape[0], beam_size
    device = enc["x_max"].device
    hyps, scores, finished = _init(B, k, start, device)
    stepper = steppers.single(model, enc, direction, k, cache)
    alive = torch.arange(B, device=device)  # original example ids still searching
    results: list[list[int] | None] = [None] * B
    best_scores = [float("-inf")] * B
    for step in range(max_len):
        probs = stepper.probs(hyps)  # (n, k, V)
        hyps, scores, finished, origin = _expand(hyps, scores, finished,
                                                 _log_probs(probs, direction), k, end)
        stepper.select(origin)
        best = scores.argmax(dim=1)  # (n,)
        done = finished.gather(1, best.unsqueeze(1)).squeeze(1) | (step == max_len - 1)
        for r in done.nonzero().flatten().tolist():
            results[int(alive[r])] = strip(hyps[r, best[r]].tolist(), direction)
            best_scores[int(alive[r])] = float(scores[r, best[r]])
        if bool(done.all()):
            break
        keep = (~done).nonzero().flatten()
        if len(keep) < hyps.shape[0]:
            hyps, scores, finished, alive = hyps[keep], scores[keep], finished[keep], alive[keep]
            stepper.keep(keep)
    titles = [r if r is not None else [] for r in results]
    return (titles, best_scores) if with_scores else titles


def greedy_decode(model: Any, enc: dict[str, Tensor], direction: str = "l2r",
                  max_len: int = 64, *, cache: bool = True, with_scores: bool = False) -> Any:
    """Batched greedy decoding of one direction: argmax over the allowed ids until the end id.

    ``cache`` / ``with_scores`` as in :func:`beam_search` (score = sum of the chosen tokens'
    ``log(p + 1e-6)``)."""
    start, end, _ = SPEC[direction]
    B = enc["x_max"].shape[0]
    device = enc["x_max"].device
    y = torch.full((B, 1, 1), start, dtype=torch.long, device=device)  # (B, k=1, t)
    stepper = steppers.single(model, enc, direction, 1, cache)
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    score = torch.zeros(B, device=device)
    for _ in range(max_len):
        logp = _log_probs(stepper.probs(y)[:, 0], direction)  # (B, V)
        top, token = logp.max(dim=-1)
        score = score + top.masked_fill(finished, 0.0)
        token = token.masked_fill(finished, PAD)
        y = torch.cat([y, token.view(B, 1, 1)], dim=-1)
        finished |= token == end
        if bool(finished.all()):
            break
    titles = [strip(row, direction) for row in y[:, 0].tolist()]
    return (titles, score.tolist()) if with_scores else titles


def bidirectional_beam_search(model: Any, enc: dict[str, Tensor], beam_size: int = 3,
                              max_len: int = 64, *, cache: bool = True,
                              with_scores: bool = False) -> Any:
    """Su's bidirectional beam search (``gen_sent``), batched over sources and k*k pairs.

    Each step scores all B*k*k (L2R_i, R2L_j) pairs in one call (cached: LSTM states once per
    hypothesis, only the cross-direction attention and the classifier per pair; full-prefix
    reference: ``model.pair_next_probs`` on the source repeated k*k times), averages L2R_i's
    probabilities over the R2L hypotheses j (and R2L_j's over i), and does a standard beam step
    per direction.

    Returns:
        (titles, directions): B title id lists in reading order, and which direction each came
        from (``l2r`` / ``r2l``); with ``with_scores``, ``(titles, directions, scores)``.
    """
    B, k = enc["x_max"].shape[0], beam_size
    device = enc["x_max"].device
    yl, sl, fl = _init(B, k, START, device)
    yr, sr, fr = _init(B, k, END, device)
    stepper = steppers.pair(model, enc, k, cache)
    alive = torch.arange(B, device=device)
    results: list[list[int] | None] = [None] * B
    chosen: list[str] = [""] * B
    best_scores = [float("-inf")] * B
    for step in range(max_len):
        pl, pr = stepper.probs(yl, yr)  # (n, k, k, V) each
        pl = pl.mean(dim=2)  # L2R_i averaged over the R2L hypotheses j -> (n, k, V)
        pr = pr.mean(dim=1)  # R2L_j averaged over the L2R hypotheses i -> (n, k, V)
        yl, sl, fl, ol = _expand(yl, sl, fl, _log_probs(pl, "l2r"), k, END)
        yr, sr, fr, orr = _expand(yr, sr, fr, _log_probs(pr, "r2l"), k, START)
        stepper.select(ol, orr)
        lb, rb = sl.argmax(1), sr.argmax(1)  # (n,)
        ls, rs = sl.gather(1, lb[:, None])[:, 0], sr.gather(1, rb[:, None])[:, 0]
        l_end = fl.gather(1, lb[:, None])[:, 0]
        r_end = fr.gather(1, rb[:, None])[:, 0]
        last = step == max_len - 1
        take_l = (l_end | last) & (ls >= rs)
        take_r = ~take_l & ((r_end & (rs >= ls)) | last)
        done = take_l | take_r
        for r in done.nonzero().flatten().tolist():
            b = int(alive[r])
            if bool(take_l[r]):
                results[b], chosen[b] = strip(yl[r, lb[r]].tolist(), "l2r"), "l2r"
                best_scores[b] = float(ls[r])
            else:
                results[b], chosen[b] = strip(yr[r, rb[r]].tolist(), "r2l"), "r2l"
                best_scores[b] = float(rs[r])
        if bool(done.all()):
            break
        keep = (~done).nonzero().flatten()
        if len(keep) < yl.shape[0]:
            yl, sl, fl, yr, sr, fr = yl[keep], sl[keep], fl[keep], yr[keep], sr[keep], fr[keep]
            alive = alive[keep]
            stepper.keep(keep)
    titles = [r if r is not None else [] for r in results]
    return (titles, chosen, best_scores) if with_scores else (titles, chosen)


def joint_greedy(model: Any, enc: dict[str, Tensor], max_len: int = 64, *,
                 cache: bool = True) -> tuple[Tensor, Tensor]:
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
    stepper = steppers.pair(model, enc, 1, cache)
    for _ in range(max_len):
        pl, pr = stepper.probs(yl, yr)  # (B, 1, 1, V)
        tl = _log_probs(pl[:, 0, 0], "l2r").argmax(-1).masked_fill(fl, PAD)
        tr = _log_probs(pr[:, 0, 0], "r2l").argmax(-1).masked_fill(fr, PAD)
        yl = torch.cat([yl, tl.view(B, 1, 1)], -1)
        yr = torch.cat([yr, tr.view(B, 1, 1)], -1)
        fl |= tl == END
        fr |= tr == START
        if bool((fl & fr).all()):
            break
    return yl[:, 0], yr[:, 0]
