"""Compare methods over seeds: mean ± std, paired per-seed differences against the plain run with
a t confidence interval, time per epoch as a ratio to plain (pure pandas / scipy)."""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats

METRICS = ("dev_acc", "dev_macro_f1", "robust_acc", "dev_acc_unseen")


def paired_interval(diffs: pd.Series, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the per-seed differences (Student t, n - 1 dof); a single seed
    gives an infinite interval."""
    n = len(diffs)
    mean = float(diffs.mean())
    if n < 2:
        return mean, -math.inf, math.inf
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * diffs.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def compare(runs: pd.DataFrame, baseline: str = "plain", level: float = 0.95) -> pd.DataFrame:
    """One row per method from the long table ``runs`` (``method, seed, <metrics>,
    seconds_per_epoch``): ``<m>_mean``, ``<m>_std`` and, against ``baseline`` on the same seeds,
    ``<m>_diff``, ``<m>_diff_low``, ``<m>_diff_high``; ``time_ratio`` = seconds per epoch / the
    baseline's."""
    if baseline not in set(runs["method"]):
        raise ValueError(f"no {baseline!r} runs to compare against (methods: "
                         f"{sorted(set(runs['method']))})")
    metrics = [m for m in METRICS if m in runs.columns]
    base = runs[runs["method"] == baseline].set_index("seed")
    rows = []
    for method, part in runs.groupby("method", sort=False):
        part = part.set_index("seed")
        row: dict = {"method": method, "seeds": len(part)}
        for m in metrics:
            row[f"{m}_mean"] = float(part[m].mean())
            row[f"{m}_std"] = float(part[m].std(ddof=1)) if len(part) > 1 else 0.0
            common = part.index.intersection(base.index)
            d, lo, hi = paired_interval(part.loc[common, m] - base.loc[common, m], level)
            row.update({f"{m}_diff": d, f"{m}_diff_low": lo, f"{m}_diff_high": hi})
        row["time_ratio"] = float(part["seconds_per_epoch"].mean()
                                  / base["seconds_per_epoch"].mean())
        rows.append(row)
    return pd.DataFrame(rows)
