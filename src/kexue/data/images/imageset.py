"""What every image reader returns, and the table the catalog stores.

* :class:`ImageSet` -- accepted images as ``uint8 (N, H, W, C)`` with labels, provenance (file and
  1-based record index per image), the official split where the format has one, the rejected
  records (the shared table of :mod:`kexue.data.rejects`) and the number of records read
  (``read == accepted + rejected``).
* :class:`RawImages` -- what a raw-image dataset hands to the ingest node: a lazy ``read()`` (so
  only the selected source is read) or why it is unavailable.
* :class:`ImageFormatError` -- a whole-file defect (wrong magic number, truncated file, image and
  label counts that differ): fail fast naming the file and what was expected.
* :func:`to_table` / :func:`from_table` -- the stored layout, a table a user can open with pandas:
  ``file, record, label`` then pixel columns ``px000 ..`` in (row, column, channel) order, grey
  levels 0..255.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kexue.data.images.table import pixel_columns
from kexue.data.rejects import count_by_reason, empty_rejects, rejects_frame

# Reason codes of every image reader (the whole-file defects raise ImageFormatError instead).
REJECT_REASONS = {
    "unreadable_image": "an image file in a folder cannot be decoded",
    "wrong_size": "an image in a folder does not have the configured height x width",
    "unsupported_mode": "a folder image with 16-bit, 32-bit or float pixels (no silent clipping)",
    "unsupported_file": "a file or folder of an image folder that is not <class>/<image>.png|jpg",
    "unknown_class": "a folder image's class folder is not in the configured class list",
    "bad_label": "a label outside the format's class range",
}   # the CSV tables (kexue.data.images.table_rejects) keep their own codes


class ImageFormatError(ValueError):
    """A whole file is not what its format promises (names the file and the expectation)."""


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Accepted images of one source.

    Attributes:
        images: ``uint8 (N, H, W, C)``.
        labels: ``int64 (N,)`` class ids (``-1`` = unlabelled).
        file: ``(N,)`` the file each image came from.
        record: ``int64 (N,)`` 1-based record index inside that file.
        classes: Class names, index = label.
        split: ``(N,)`` the format's official split (``train`` / ``test``), or None.
        rejects: Rejected records (``kexue.data.rejects`` table).
        read: Records read (accepted + rejected).
        source: The source name (``mnist_idx``, ``cifar10`` ...).
    """

    images: np.ndarray
    labels: np.ndarray
    file: np.ndarray
    record: np.ndarray
    classes: list[str]
    source: str
    split: np.ndarray | None = None
    rejects: pd.DataFrame = field(default_factory=empty_rejects)
    read: int = -1

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} "
                             f"{self.images.shape}")
        for name in ("labels", "file", "record"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} images")
        if self.read < 0:
            object.__setattr__(self, "read", n + len(self.rejects))
        if self.read != n + len(self.rejects):
            raise ValueError(f"read {self.read} != accepted {n} + rejected {len(self.rejects)}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(H, W, C)``."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    def report(self) -> dict:
        """Counts for the ingest report: ``read == accepted + rejected``, rejects by reason."""
        return {"source": self.source, "files": sorted(set(self.file.tolist())
                                                      | set(self.rejects["file"].tolist())),
                "shape": list(self.shape), "classes": list(self.classes), "read": int(self.read),
                "accepted": len(self.images), "rejected": len(self.rejects),
                "by_reason": count_by_reason(self.rejects)}


@dataclass(frozen=True, eq=False)
class RawImages:
    """A raw source as the ingest node receives it: ``read()`` it, unless ``unavailable``."""

    name: str
    read: Callable[[], ImageSet]
    unavailable: str | None = None


def concat(parts: list[ImageSet], source: str) -> ImageSet:
    """One ImageSet from several files of the same source (shapes must agree)."""
    shapes = {p.shape for p in parts if len(p.images)}
    if len(shapes) > 1:
        raise ImageFormatError(f"{source}: files with different image shapes {sorted(shapes)}")
    rejects = [p.rejects for p in parts if len(p.rejects)]
    splits = [p.split for p in parts]
    return ImageSet(
        images=np.concatenate([p.images for p in parts]), source=source,
        labels=np.concatenate([p.labels for p in parts]),
        file=np.concatenate([p.file for p in parts]),
        record=np.concatenate([p.record for p in parts]), classes=parts[0].classes,
        split=None if any(s is None for s in splits) else np.concatenate(splits),
        rejects=pd.concat(rejects, ignore_index=True) if rejects else empty_rejects(),
        read=sum(p.read for p in parts))


def reject_rows(rows: list[tuple[str, int, str, str, str]]) -> pd.DataFrame:
    """``(file, record, reason, detail, record_text)`` -> the shared rejects table."""
    return rejects_frame([(f, line, "record", reason, detail, rec)
                          for f, line, reason, detail, rec in rows], REJECT_REASONS)


def to_table(images: np.ndarray, labels: np.ndarray, file: np.ndarray,
             record: np.ndarray) -> pd.DataFrame:
    """The stored layout: ``file, record, label, px000 ..`` (pixels in H, W, C order)."""
    n = len(images)
    flat = images.reshape(n, -1)
    table = pd.DataFrame(flat, columns=pixel_columns(flat.shape[1]))
    table.insert(0, "label", labels.astype("int64"))
    table.insert(0, "record", record.astype("int64"))
    table.insert(0, "file", file.astype(str))
    return table


def from_table(table: pd.DataFrame, shape: tuple[int, int, int]) -> np.ndarray:
    """Pixels of a stored table back to ``uint8 (N, H, W, C)``."""
    px = [c for c in table.columns if c.startswith("px")]
    return table[px].to_numpy(dtype=np.uint8).reshape(len(table), *shape)
