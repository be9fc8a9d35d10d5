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

import functools
from typing import Any

import torch
from torch import Tensor

from kexue.models.title_gen import steppers

__all__ = ["beam_search", "bidirectional_beam_search", "greedy_decode", "joint_greedy", "strip"]

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


@functools.lru_cache(maxsize=32)
def _excluded(directions: tuple[str, ...], V: int, device: torch.device) -> Tensor:
    """Bool (len(directions), V): the ids each direction never emits."""
    mask = torch.zeros(len(directions), V, dtype=torch.bool)
    for e, d in enumerate(directions):
        mask[e, list(SPEC[d][2])] = True
    return mask.to(device)


def _log_probs(probs: Tensor, direction: str) -> Tensor:
    """``log(p + 1e-6)`` with the direction's excluded ids set to -inf. (…, V) -> (…, V)."""
    return torch.log(probs.float() + EPS).masked_fill(
        _excluded((direction,), probs.shape[-1], probs.device)[0], float("-inf"))


def _expand(hyps: Tensor, scores: Tensor, finished: Tensor, logp: Tensor, k: int,
            end: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One beam step per example: top-k of the candidates ``prev + log(p + 1e-6)``.

    Args:
        hyps: (B, k, t); scores: (B, k); finished: (B, k) bool; logp: (B, k, V).

    Returns:
        New (hyps (B, k, t+1), scores (B, k), finished (B, k)) and ``origin`` (B, k): the old
        hypothesis each new one extends (to reorder cached decoder state).
    """
    B, _, t = hyps.shape
    V = logp.shape[-1]
    # one top-k over all k*V candidates ``prev + log p`` (the same set as a per-hypothesis
    # top-k followed by a top-k of the k*k survivors, without the second pass; and torch's CPU
    # topk over V is several times slower per row than over k*V once there are ~100 rows)
    cand = (scores.unsqueeze(-1) + logp).masked_fill(finished.unsqueeze(-1), float("-inf"))
    # a finished hypothesis survives as ONE candidate (itself + pad, same score); pad is an
    # excluded id (-inf) for unfinished hypotheses in both directions
    cand[..., PAD] = torch.where(finished, scores, cand[..., PAD])
    new_scores, flat = cand.view(B, -1).topk(k, dim=-1)  # (B, k)
    origin = flat // V  # (B, k) which hypothesis it extends
    was_finished = finished.gather(1, origin)
    token = (flat % V).masked_fill(was_finished, PAD)  # (B, k)
    hyps = torch.cat([hyps.gather(1, origin.unsqueeze(-1).expand(B, k, t)), token.unsqueeze(-1)], -1)
    finished = was_finished | (token == end)
    return hyps, new_scores, finished, origin


def _split_rows(done: list[bool], device: torch.device) -> tuple[list[int], Tensor | None]:
    """Rows that finished this step, and the index of those still searching (None: all done)."""
    rows = [i for i, f in enumerate(done) if f]
    if len(rows) == len(done):
        return rows, None
    return rows, torch.tensor([i for i, f in enumerate(done) if not f], device=device)


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
    alive = list(range(B))  # original example ids still searching
    results: list[list[int] | None] = [None] * B
    best_scores = [float("-inf")] * B
    for step in range(max_len):
        probs = stepper.probs(hyps)  # (n, k, V)
        hyps, scores, finished, origin = _expand(hyps, scores, finished,
                                                 _log_probs(probs, direction), k, end)
        stepper.select(origin)
        best = scores.argmax(dim=1)  # (n,)
        done = finished.gather(1, best.unsqueeze(1)).squeeze(1) | (step == max_len - 1)
        rows, keep = _split_rows(done.tolist(), device)  # the step's one host synchronisation
        if rows:
            idx = torch.tensor(rows, device=device)
            for r, ids, sc in zip(rows, hyps[idx, best[idx]].tolist(), scores[idx, best[idx]].tolist()):
                results[alive[r]], best_scores[alive[r]] = strip(ids, direction), sc
        if keep is None:
            break
        if len(keep) < hyps.shape[0]:
            hyps, scores, finished = hyps[keep], scores[keep], finished[keep]
            alive = [alive[i] for i in keep.tolist()]
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


def _stacked_init(B: int, k: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Both directions' start state: hyps (2, B, k, 1) [L2R START; R2L END], scores, finished."""
    hyps, scores, finished = _init(2 * B, k, START, device)
    hyps[B:] = END
    return hyps.view(2, B, k, 1), scores.view(2, B, k), finished.view(2, B, k)


def _stacked_log_probs(probs: Tensor) -> Tensor:
    """(2, ..., V) probabilities of [L2R; R2L] -> ``log(p + 1e-6)`` with each direction's
    excluded ids set to -inf."""
    mask = _excluded(("l2r", "r2l"), probs.shape[-1], probs.device)  # (2, V)
    mask = mask.view(2, *([1] * (probs.dim() - 2)), -1)
    return torch.log(probs.float() + EPS).masked_fill(mask, float("-inf"))


def bidirectional_beam_search(model: Any, enc: dict[str, Tensor], beam_size: int = 3,
                              max_len: int = 64, *, cache: bool = True,
                              with_scores: bool = False) -> Any:
    """Su's bidirectional beam search (``gen_sent``), batched over sources and k*k pairs.

    Each step scores all B*k*k (L2R_i, R2L_j) pairs in one call (cached: both directions fused,
    LSTM states once per hypothesis, only the cross-direction attention and the classifier per
    pair; full-prefix reference: ``model.pair_next_probs`` on the source repeated k*k times),
    averages L2R_i's probabilities over the R2L hypotheses j (and R2L_j's over i), and does a
    standard beam step per direction (both directions in one stacked call).

    Returns:
        (titles, directions): B title id lists in reading order, and which direction each came
        from (``l2r`` / ``r2l``); with ``with_scores``, ``(titles, directions, scores)``.
    """
    B, k = enc["x_max"].shape[0], beam_size
    device = enc["x_max"].device
    hyps, scores, finished = _stacked_init(B, k, device)  # (2, B, k, 1), (2, B, k), (2, B, k)
    ends = torch.tensor([END, START], device=device).view(2, 1, 1)  # each direction's end id
    stepper = steppers.pair(model, enc, k, cache)
    alive = list(range(B))
    results: list[list[int] | None] = [None] * B
    chosen: list[str] = [""] * B
    best_scores = [float("-inf")] * B
    for step in range(max_len):
        n, t = hyps.shape[1], hyps.shape[-1]
        # own direction's next-token probs averaged over the other direction's hypotheses
        logp = _stacked_log_probs(stepper.probs(hyps).mean(dim=3))  # (2, n, k, V)
        h, s, f, origin = _expand(hyps.view(2 * n, k, t), scores.view(2 * n, k),
                                  finished.view(2 * n, k), logp.view(2 * n, k, -1), k,
                                  ends.expand(2, n, 1).reshape(2 * n, 1))
        hyps, scores, finished = h.view(2, n, k, t + 1), s.view(2, n, k), f.view(2, n, k)
        stepper.select(origin.view(2, n, k))
        best = scores.argmax(-1, keepdim=True)  # (2, n, 1)
        bs, bf = scores.gather(-1, best)[..., 0], finished.gather(-1, best)[..., 0]  # (2, n)
        last = step == max_len - 1
        take_l = (bf[0] | last) & (bs[0] >= bs[1])
        take_r = ~take_l & ((bf[1] & (bs[1] >= bs[0])) | last)
        flags, from_l = torch.stack([take_l | take_r, take_l]).tolist()  # one host sync
        rows, keep = _split_rows(flags, device)
        if rows:
            idx = torch.tensor(rows, device=device)
            e = torch.tensor([0 if from_l[r] else 1 for r in rows], device=device)
            ids = hyps[e, idx, best[e, idx, 0]].tolist()
            for r, row, sc in zip(rows, ids, bs[e, idx].tolist()):
                d = "l2r" if from_l[r] else "r2l"
                results[alive[r]], chosen[alive[r]], best_scores[alive[r]] = strip(row, d), d, sc
        if keep is None:
            break
        if len(keep) < n:
            hyps, scores, finished = hyps[:, keep], scores[:, keep], finished[:, keep]
            alive = [alive[i] for i in keep.tolist()]
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
    hyps, _, finished = _stacked_init(B, 1, device)  # (2, B, 1, 1), (2, B, 1)
    finished = finished[..., 0]  # (2, B)
    ends = torch.tensor([END, START], device=device).view(2, 1)
    stepper = steppers.pair(model, enc, 1, cache)
    for _ in range(max_len):
        logp = _stacked_log_probs(stepper.probs(hyps)[:, :, 0, 0])  # (2, B, V)
        token = logp.argmax(-1).masked_fill(finished, PAD)  # (2, B)
        hyps = torch.cat([hyps, token.view(2, B, 1, 1)], -1)
        finished |= token == ends
        if bool(finished.all()):
            break
    return hyps[0, :, 0], hyps[1, :, 0]
