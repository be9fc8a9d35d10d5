"""The fixed train / val / test split of an image set (seeded, stratified, reproducible)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from kexue.config import ConfigError


def split_indices(labels: np.ndarray, official: np.ndarray | None, n_val: int, n_test: int,
                  seed: int, where: str = "image_ingest.split") -> dict[str, np.ndarray]:
    """Indices of each split.

    With an official split (IDX ``train``/``t10k``, CIFAR ``data_batch``/``test_batch``) its test
    part is the test split and ``n_val`` images of its train part (stratified) are the val split;
    otherwise ``n_test`` then ``n_val`` images are drawn (stratified) and the rest is train.
    """
    idx = np.arange(len(labels))
    strat = labels if len(np.unique(labels)) > 1 else None

    def take(pool: np.ndarray, n: int, key: str) -> tuple[np.ndarray, np.ndarray]:
        if n <= 0:
            return pool, pool[:0]
        if n >= len(pool):
            raise ConfigError(f"Invalid parameter '{where}.{key}': {n} of {len(pool)} images "
                              f"would leave no training images. Fix: use a number below "
                              f"{len(pool)}.")
        s = strat[pool] if strat is not None else None
        try:
            rest, part = train_test_split(pool, test_size=n, stratify=s, random_state=seed)
        except ValueError:                    # a class too small to stratify: plain shuffle
            rest, part = train_test_split(pool, test_size=n, random_state=seed)
        return np.sort(rest), np.sort(part)

    if official is not None and (official == "test").any():
        test, pool = idx[official == "test"], idx[official != "test"]
    else:
        pool, test = take(idx, n_test, "n_test")
    train, val = take(pool, n_val, "n_val")
    return {"train": train, "val": val, "test": test}
