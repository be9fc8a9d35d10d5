"""Id encoding, the torch ``Dataset`` and the collate function for title generation.

One example = source ids + title ids (both WITHOUT specials). The collate function builds, per
batch, right-padded with the pad id (0):

* ``x``  (B, Lx)   source ids;
* ``yl`` (B, T+2)  L2R sequence ``[2] + title + [3]``;
* ``yr`` (B, T+2)  R2L sequence ``[3] + reversed(title) + [2]`` (``reverse`` of ``yl``'s valid part);
* optional ``yl_ctx`` / ``yr_ctx`` (B, T+2): generated sequences of the two directions (second
  pass), padded/truncated to the width of ``yl`` so that positions line up for mask_right.

Decoder inputs are ``y[:, :-1]``, targets ``y[:, 1:]``, target mask ``y[:, 1:] != 0``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

PAD, START, END = 0, 2, 3


def pad_rows(rows: Sequence[Sequence[int]], width: int | None = None) -> Tensor:
    """Right-pad (or truncate) integer rows to ``width`` (default: longest) -> (B, width) long."""
    width = max((len(r) for r in rows), default=0) if width is None else width
    out = torch.full((len(rows), max(width, 1)), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        r = list(r)[:width]
        if r:
            out[i, :len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out[:, :width] if width > 0 else out[:, :0]


def l2r_target(title: Sequence[int]) -> list[int]:
    """``[2] + title + [3]``."""
    return [START, *title, END]


def r2l_target(title: Sequence[int]) -> list[int]:
    """``[3] + reversed(title) + [2]`` == ``reversed(l2r_target(title))``."""
    return [END, *reversed(list(title)), START]


class TitleDataset(Dataset):
    """Pairs of id lists, optionally with generated context sequences for the second pass.

    Args:
        sources: Source id lists (no specials, already truncated).
        titles: Title id lists (no specials, already truncated).
        ctx_l2r: Optional generated L2R sequences (``[2] + gen + [3]``), one per example.
        ctx_r2l: Optional generated R2L sequences (``[3] + gen + [2]``).
    """

    def __init__(self, sources: Sequence[Sequence[int]], titles: Sequence[Sequence[int]],
                 ctx_l2r: Sequence[Sequence[int]] | None = None,
                 ctx_r2l: Sequence[Sequence[int]] | None = None) -> None:
        if len(sources) != len(titles):
            raise ValueError(f"{len(sources)} sources vs {len(titles)} titles")
        if (ctx_l2r is None) != (ctx_r2l is None):
            raise ValueError("give both ctx_l2r and ctx_r2l, or neither")
        if ctx_l2r is not None and not (len(ctx_l2r) == len(ctx_r2l) == len(sources)):
            raise ValueError("context lists must have one entry per example")
        self.sources, self.titles = list(sources), list(titles)
        self.ctx_l2r = list(ctx_l2r) if ctx_l2r is not None else None
        self.ctx_r2l = list(ctx_r2l) if ctx_r2l is not None else None

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, key: int | tuple[int, int, int]) -> dict[str, Any]:
        # (seed, epoch, i) from kexue.training.resume.EpochIndexSampler: the batch's mix_gold
        # draw is then seeded from it (survives a resume), see Collate.
        draw = key if isinstance(key, tuple) else None
        i = key[2] if draw is not None else key
        item: dict[str, Any] = {"x": self.sources[i], "title": self.titles[i]}
        if draw is not None:
            item["draw"] = draw
        if self.ctx_l2r is not None:
            item["ctx_l2r"], item["ctx_r2l"] = self.ctx_l2r[i], self.ctx_r2l[i]
        return item


class Collate:
    """Picklable collate function (see module docstring).

    Args:
        mix_gold: With context present, probability per batch of dropping it (gold context).
        seed: Seed of the private RNG for ``mix_gold``. Items that carry ``draw = (seed, epoch,
            index)`` (a resumable fit) seed the batch's draw from its first item instead, so the
            draws depend only on seed, epoch and data order, not on the process's history.
    """

    def __init__(self, mix_gold: float = 0.0, seed: int = 0) -> None:
        self.mix_gold = mix_gold
        self.rng = random.Random(seed)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Tensor]:
        x = pad_rows([it["x"] if len(it["x"]) else [1] for it in items])  # empty source -> [unk]
        yl = pad_rows([l2r_target(it["title"]) for it in items])
        yr = pad_rows([r2l_target(it["title"]) for it in items])
        batch = {"x": x, "yl": yl, "yr": yr}
        if "ctx_l2r" in items[0] and not (self.mix_gold > 0 and self._draw(items) < self.mix_gold):
            batch["yl_ctx"] = pad_rows([it["ctx_l2r"] for it in items], yl.shape[1])
            batch["yr_ctx"] = pad_rows([it["ctx_r2l"] for it in items], yl.shape[1])
        return batch


    def _draw(self, items: list[dict[str, Any]]) -> float:
        if "draw" in items[0]:
            seed, epoch, index = items[0]["draw"]
            return random.Random(f"mix_gold:{seed}:{epoch}:{index}").random()
        return self.rng.random()


def encode_texts(vocab: Any, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """Encode texts with a ``CharVocab`` (no specials), truncated to ``max_len`` chars."""
    return [vocab.encode(t, max_len) for t in texts]
