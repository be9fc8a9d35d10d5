"""Image mosaics for reports: a tile of ``(N, H, W, C)`` images as one array or PNG figure."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def tile(images: np.ndarray, cols: int = 8) -> np.ndarray:
    """``(N, H, W, C)`` -> one ``(rows*H, cols*W, C)`` mosaic (blank cells after the last)."""
    n, h, w, c = images.shape
    rows = max(1, -(-n // cols))
    grid = np.zeros((rows * h, cols * w, c), dtype=images.dtype)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[r * h:(r + 1) * h, q * w:(q + 1) * w] = images[i]
    return grid


def grid_figure(images: np.ndarray, title: str, cols: int = 8) -> Figure:
    """A matplotlib figure of a mosaic of ``uint8`` or [0, 1] images (saved as PNG)."""
    mosaic = tile(images, cols)
    fig = Figure(figsize=(cols * 0.8, max(1, mosaic.shape[0] / mosaic.shape[1] * cols) * 0.8 + 0.4))
    ax = fig.add_subplot()
    ax.imshow(mosaic.squeeze(-1) if mosaic.shape[-1] == 1 else mosaic, cmap="gray",
              interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return fig
