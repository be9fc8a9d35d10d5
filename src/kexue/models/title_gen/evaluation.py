"""Batched decoding of a whole split with any of the four methods, with timing."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from kexue.models.title_gen import beam
from kexue.models.title_gen.batching import pad_rows
from kexue.models.title_gen.model import Seq2Seq
from kexue.progress import track


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def decode_split(model: Seq2Seq, sources: Sequence[Sequence[int]], method: str, *,
                 beam_size: int, max_len: int, batch_size: int,
                 device: torch.device | str = "cpu", cache: bool = True,
                 ) -> tuple[list[list[int]], list[str], float]:
    """Decode every source with ``method`` (l2r_greedy | l2r_beam | r2l_beam | bidi_beam).

    Sources are processed in length-sorted batches (less padding) and returned in input order.
    ``cache``: incremental decoding (default) or the full-prefix reference (same outputs).

    Returns:
        (title id lists, direction each output came from, total decoding seconds).
    """
    model = model.to(device).eval()
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    outputs: list[list[int]] = [[] for _ in sources]
    directions = [""] * len(sources)
    t0 = time.perf_counter()
    batches = range(0, len(order), batch_size)
    for s in track(batches, f"decoding ({method})", unit=" batches"):
        idx = order[s:s + batch_size]
        x = pad_rows([sources[i] if len(sources[i]) else [1] for i in idx]).to(device)
        enc = model.encode(x)
        if method == "l2r_greedy":
            res = beam.greedy_decode(model, enc, "l2r", max_len, cache=cache)
            dirs = ["l2r"] * len(idx)
        elif method in ("l2r_beam", "r2l_beam"):
            d = method[:3]
            res = beam.beam_search(model, enc, d, beam_size, max_len, cache=cache)
            dirs = [d] * len(idx)
        elif method == "bidi_beam":
            res, dirs = beam.bidirectional_beam_search(model, enc, beam_size, max_len, cache=cache)
        else:
            raise ValueError(f"unknown decoding method {method!r}")
        for i, r, d in zip(idx, res, dirs):
            outputs[i], directions[i] = r, d
    if device != "cpu" and torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return outputs, directions, time.perf_counter() - t0


@torch.no_grad()
def joint_greedy_split(model: Seq2Seq, sources: Sequence[Sequence[int]], *, max_len: int,
                       batch_size: int, device: torch.device | str = "cpu", cache: bool = True,
                       ) -> tuple[list[list[int]], list[list[int]]]:
    """Generated L2R and R2L sequences (with their start/end ids) for every source (second pass)."""
    model = model.to(device).eval()
    ctx_l: list[list[int]] = []
    ctx_r: list[list[int]] = []
    for s in range(0, len(sources), batch_size):
        rows = [r if len(r) else [1] for r in sources[s:s + batch_size]]
        yl, yr = beam.joint_greedy(model, model.encode(pad_rows(rows).to(device)), max_len,
                                   cache=cache)
        ctx_l += [[t for t in row if t != 0] for row in yl.cpu().tolist()]
        ctx_r += [[t for t in row if t != 0] for row in yr.cpu().tolist()]
    return ctx_l, ctx_r
