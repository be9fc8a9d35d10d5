"""MNIST / Fashion-MNIST IDX files, exactly as published (gzipped or not).

Layout (LeCun's page): a 4-byte magic ``0x00 0x00 <type> <ndim>`` (type ``0x08`` = unsigned
byte), ``ndim`` big-endian int32 sizes, then the data. Images: magic ``0x00000803`` (2051), sizes
``N, rows, cols``; labels: ``0x00000801`` (2049), size ``N``. File names:
``{train,t10k}-images-idx3-ubyte[.gz]`` and ``{train,t10k}-labels-idx1-ubyte[.gz]``.

Whole-file defects raise :class:`~kexue.data.images.imageset.ImageFormatError` naming the file and
the expectation: wrong magic number, a file shorter (truncated) or longer than its header says,
image and label files with different counts, an images file without its labels. A label outside
the class range is a rejects row (``bad_label``, record = 1-based image index).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from kexue.data.images.imageset import ImageFormatError, ImageSet, RawImages, concat, reject_rows

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
SPLITS = {"train": "train", "t10k": "test"}
CLASSES = {
    "mnist_idx": [str(i) for i in range(10)],
    "fashion_mnist_idx": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                          "Shirt", "Sneaker", "Bag", "Ankle boot"],
}


def _gunzip(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def parse_idx(data: bytes, name: str, magic: int) -> np.ndarray:
    """Decode one IDX file (gzip detected by its magic bytes) into a uint8 array."""
    try:
        data = _gunzip(data)
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: corrupt deflate data
        raise ImageFormatError(f"{name}: not a readable gzip file ({exc}). Fix: re-download it "
                               "or give the uncompressed IDX file.") from None
    if len(data) < 4:
        raise ImageFormatError(f"{name}: {len(data)} bytes, not even an IDX header")
    (found,) = struct.unpack(">i", data[:4])
    if found != magic:
        kind = "images (idx3)" if magic == IMAGES_MAGIC else "labels (idx1)"
        raise ImageFormatError(f"{name}: magic number {found:#010x}, expected {magic:#010x} for "
                               f"IDX {kind}. Fix: check the file is the {kind} file, not the "
                               "other one or another format.")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ImageFormatError(f"{name}: truncated inside the header ({len(data)} bytes)")
    dims = struct.unpack(f">{ndim}i", data[4:header])
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "longer than its header says"
        raise ImageFormatError(f"{name}: {state}: {len(data)} bytes, the header {dims} means "
                               f"{expected}. Fix: re-download the file (compare its size / md5).")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def parse_pair(images: bytes, labels: bytes, images_name: str, labels_name: str,
               source: str, split: str) -> ImageSet:
    """One images + labels pair -> ImageSet (``(N, 28, 28, 1)``)."""
    x = parse_idx(images, images_name, IMAGES_MAGIC)
    y = parse_idx(labels, labels_name, LABELS_MAGIC).astype(np.int64)
    if x.ndim != 3:
        raise ImageFormatError(f"{images_name}: {x.ndim - 1}-d images, expected N x rows x cols")
    if len(x) != len(y):
        raise ImageFormatError(f"{images_name} holds {len(x)} images but {labels_name} holds "
                               f"{len(y)} labels. Fix: use the labels file of the same split.")
    classes = CLASSES[source]
    bad = (y < 0) | (y >= len(classes))
    rejects = reject_rows([(labels_name, int(i) + 1, "bad_label",
                            f"label {int(y[i])} not in 0..{len(classes) - 1}", str(int(y[i])))
                           for i in np.flatnonzero(bad)])
    keep = ~bad
    n = int(keep.sum())
    return ImageSet(images=x[keep][..., None].copy(), labels=y[keep], source=source,
                    file=np.full(n, images_name, dtype=object),
                    record=np.flatnonzero(keep).astype(np.int64) + 1, classes=classes,
                    split=np.full(n, split, dtype=object), rejects=rejects, read=len(x))


class IdxImagesDataset(AbstractDataset[None, RawImages]):
    """The IDX files of a folder (``train-*`` and / or ``t10k-*``), read lazily.

    Args:
        path: Folder holding the official file names (gzipped or not).
        source: ``mnist_idx`` or ``fashion_mnist_idx`` (class names).
        metadata: Kedro-Viz metadata.
    """

    def __init__(self, *, path: str, source: str = "mnist_idx",
                 metadata: dict[str, Any] | None = None) -> None:
        if source not in CLASSES:
            raise DatasetError(f"IdxImagesDataset source {source!r}: use one of {sorted(CLASSES)}")
        self._path, self._source, self.metadata = Path(path), source, metadata

    def _find(self, prefix: str, kind: str) -> Path | None:
        for name in (f"{prefix}-{kind}-ubyte", f"{prefix}-{kind}-ubyte.gz"):
            if (self._path / name).is_file():
                return self._path / name
        return None

    def _pairs(self) -> list[tuple[str, Path, Path | None]]:
        return [(p, img, self._find(p, "labels-idx1")) for p in SPLITS
                if (img := self._find(p, "images-idx3")) is not None]

    def preflight(self) -> str | None:
        """None when there is at least one images file; otherwise what is missing."""
        if self._pairs():
            return None
        return (f"No IDX images in {self._path} (expected train-images-idx3-ubyte[.gz] and/or "
                f"t10k-images-idx3-ubyte[.gz] with their labels files). Fix: put the official "
                f"files there, or choose another image_ingest.source.")

    def _read(self) -> ImageSet:
        parts = []
        for prefix, images, labels in self._pairs():
            if labels is None:
                raise ImageFormatError(f"{images}: no labels file {prefix}-labels-idx1-ubyte[.gz] "
                                       "beside it. Fix: add the labels of the same split.")
            parts.append(parse_pair(images.read_bytes(), labels.read_bytes(), images.name,
                                    labels.name, self._source, SPLITS[prefix]))
        return concat(parts, self._source)

    def load(self) -> RawImages:
        return RawImages(self._source, self._read, self.preflight())

    def save(self, data: None) -> None:
        raise DatasetError("IdxImagesDataset is read-only: raw data is never written")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "source": self._source}
