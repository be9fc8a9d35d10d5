"""Leakage-free train/dev/test splits of title pairs and the overlap report."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["assign_splits", "split_overlap"]


def assign_splits(ids: list[str], dev: float, test: float, seed: int,
                  groups: list[str] | None = None) -> list[str]:
    """Split labels for ``ids``, whole ``groups`` at a time (identical sources on one side).

    Groups (each id alone when ``groups`` is None) are ordered by their smallest id, shuffled
    with ``seed`` and filled into test until it holds ``round(n*test)`` rows, then dev until
    ``round(n*dev)``; the rest is train. Sizes are exact without repeated groups and overshoot
    by less than one group otherwise. Deterministic for a given set of ids and seed,
    independent of the order of ``ids``; without repeated groups it is the plain row split.
    """
    n = len(ids)
    n_test, n_dev = round(n * test), round(n * dev)
    members: dict[str, list[int]] = {}
    for i in range(n):
        members.setdefault(ids[i] if groups is None else groups[i], []).append(i)
    ordered = sorted(members.values(), key=lambda rows: min(ids[i] for i in rows))
    perm = np.random.default_rng(seed).permutation(len(ordered))
    labels = ["train"] * n
    filled = {"test": 0, "dev": 0}
    for j in perm:
        split = ("test" if filled["test"] < n_test else
                 "dev" if filled["dev"] < n_dev else None)
        if split is None:
            break
        for i in ordered[j]:
            labels[i] = split
        filled[split] += len(ordered[j])
    return labels


def split_overlap(title_pairs: pd.DataFrame) -> dict[str, Any]:
    """Duplicates and train overlap of a split pairs table (the leakage check).

    ``cross_split_sources`` (a source in two splits) must be 0; ``title_overlap`` is the share of
    dev/test pairs whose title also occurs verbatim as a TRAIN title (memorisable answers).
    """
    train_titles = set(title_pairs.loc[title_pairs["split"] == "train", "target"])
    per_source = title_pairs.groupby("source")["split"].nunique()
    overlap = {}
    for split in ("dev", "test"):
        part = title_pairs.loc[title_pairs["split"] == split, "target"]
        overlap[split] = float(part.isin(train_titles).mean()) if len(part) else 0.0
    return {
        "duplicate_sources": int(title_pairs["source"].duplicated().sum()),
        "duplicate_titles": int(title_pairs["target"].duplicated().sum()),
        "cross_split_sources": int((per_source > 1).sum()),
        "title_overlap": overlap,
    }
