"""Figures the report draws itself (matplotlib, Agg): training curves read from the per-epoch
rows every training node keeps (``EpochMetrics`` histories), and the entity-linking stage
funnel. Each function returns PNG bytes (``None`` when there is nothing to draw)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from kexue.io.png import figure_png as png_bytes


def _plt() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, imported when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def curves(histories: Mapping[str, pd.DataFrame | Sequence[dict[str, Any]] | None],
           metrics: Sequence[str], title: str, x: str = "epoch") -> bytes | None:
    """One panel per metric, one line per model / run: ``histories`` maps a label to its
    per-epoch rows. Metrics no history has are skipped; ``None`` if nothing is left."""
    frames = {label: pd.DataFrame(list(h) if not isinstance(h, pd.DataFrame) else h)
              for label, h in histories.items() if h is not None and len(h) > 0}
    shown = [m for m in metrics if any(m in f.columns for f in frames.values())]
    if not shown:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 2.8), squeeze=False)
    for ax, metric in zip(axes[0], shown, strict=True):
        for label, frame in frames.items():
            if metric in frame.columns:
                xs = frame[x] if x in frame.columns else range(1, len(frame) + 1)
                ax.plot(xs, frame[metric], marker="o", markersize=2.5, linewidth=1.2, label=label)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return png_bytes(fig)


def funnel(stages: pd.DataFrame | None, title: str) -> bytes | None:
    """Precision / recall / F1 of each stage (rows in order), as grouped bars."""
    if stages is None or len(stages) == 0 or "stage" not in stages.columns:
        return None
    plt = _plt()
    cols = [c for c in ("precision", "recall", "f1") if c in stages.columns]
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    width = 0.8 / len(cols)
    for i, col in enumerate(cols):
        xs = [j + (i - (len(cols) - 1) / 2) * width for j in range(len(stages))]
        ax.bar(xs, stages[col], width=width, label=col)
    ax.set_xticks(range(len(stages)), list(stages["stage"]), fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title, fontsize=10)
    return png_bytes(fig)
