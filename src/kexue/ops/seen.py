"""The gate's leakage guard: score champion and challenger only on rows neither has an edge on.

A champion was trained in an earlier run, on THAT run's train split. Splits are seeded
permutations of the current data (Su's ``el.py`` split for CCKS, a seeded group shuffle for the
title pairs, a seeded stratified split for images), so when the data grows or a split setting
changes, rows the champion trained on land in today's evaluation split; scored there, the
champion looks better than it is and a better challenger is rejected. Every challenger bundle
therefore carries ``train_keys`` (:func:`train_keys`: 64-bit BLAKE2b digests of its training
rows' content, sorted and unique, an int64 tensor that ``torch.load(weights_only=True)``
accepts), and :func:`fair_rows` drops the
evaluation rows that exactly ONE of the two models trained on. Rows both trained on (the data's
own train/eval duplicates, which the ingest reports) favour neither and stay; with an unchanged
split the two key sets cover the same rows and nothing is dropped.

The content keyed is the text (CCKS) and the source text (title pairs), the keys the splits
group by, and the pixel bytes (images; their split does not group identical images, so an image
in both train and test of one split counts as trained on by both and stays).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

KEYS = "train_keys"
NOT_RECORDED = ("not recorded (a bundle registered before train_keys existed): the rows it "
                "trained on cannot be excluded")


def row_keys(contents: Iterable[str | bytes]) -> Tensor:
    """One int64 key per row: the first 8 bytes of BLAKE2b of the row's content (UTF-8 for
    text). Stable across processes and machines (unlike ``hash``). (N,) int64."""
    out = [int.from_bytes(hashlib.blake2b(c.encode() if isinstance(c, str) else bytes(c),
                                          digest_size=8).digest(), "little", signed=True)
           for c in contents]
    return torch.tensor(out, dtype=torch.int64)


def train_keys(contents: Iterable[str | bytes]) -> Tensor:
    """The sorted unique :func:`row_keys` of a model's training rows, for its bundle."""
    return torch.unique(row_keys(contents))


def fair_rows(eval_contents: list[str | bytes], champion: Mapping[str, Any] | None,
              challenger: Mapping[str, Any]) -> tuple[Tensor, dict[str, Any]]:
    """Which evaluation rows both models are scored on, and the accounting.

    Args:
        eval_contents: The evaluation split's rows' content, in order.
        champion: The champion bundle (``None`` before the first promotion).
        challenger: The challenger bundle (must carry ``train_keys``).

    Returns:
        ``(keep, info)``: bool (N,) mask, and ``{"n_eval_split", "n_scored",
        "excluded_seen_by_champion_only", "excluded_seen_by_challenger_only",
        "champion_train_keys"}`` (counts conserved: n_eval_split = n_scored + both excluded).
    """
    if KEYS not in challenger:
        raise ValueError(f"the challenger bundle has no {KEYS!r}; the retrain node must add "
                         "kexue.ops.seen.train_keys(<its training rows>) to it")
    keys = row_keys(eval_contents)
    by_challenger = torch.isin(keys, challenger[KEYS])
    recorded = champion is not None and KEYS in champion
    by_champion = torch.isin(keys, champion[KEYS]) if recorded else by_challenger
    champion_only, challenger_only = by_champion & ~by_challenger, by_challenger & ~by_champion
    keep = ~(champion_only | challenger_only)
    info = {"n_eval_split": len(keys), "n_scored": int(keep.sum()),
            "excluded_seen_by_champion_only": int(champion_only.sum()),
            "excluded_seen_by_challenger_only": int(challenger_only.sum()),
            "champion_train_keys": ("no champion" if champion is None else
                                    "recorded" if recorded else NOT_RECORDED)}
    if len(keys) and not info["n_scored"]:
        raise ValueError(
            f"every one of the {len(keys)} evaluation rows was trained on by one of the two "
            "models (the split changed since the champion was trained: data, seed or split "
            "settings), so the gate has nothing fair to compare them on. Fix: restore the split "
            "settings the champion was trained with, or add data so that new rows reach the "
            "evaluation split.")
    return keep, info


def subset(rows: Mapping[str, list], keep: Tensor) -> dict[str, list]:
    """The kept rows of a column dict of equal-length lists / tensors (``keep`` (N,) bool)."""
    idx = keep.nonzero().flatten().tolist()
    return {k: (v[keep] if isinstance(v, Tensor) else [v[i] for i in idx])
            for k, v in rows.items()}
