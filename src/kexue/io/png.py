"""PNG bytes of figures (no heavy imports at module level: the report's data model uses it)."""

from __future__ import annotations

import io
from typing import Any

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def figure_png(fig: Any, dpi: int = 90) -> bytes:
    """Render a matplotlib figure to PNG bytes (in memory) and close it: figures that travel
    inside another dataset (the run report embeds them) rather than as files of their own."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
