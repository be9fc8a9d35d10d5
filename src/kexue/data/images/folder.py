"""A folder of PNG / JPEG images, one sub-folder per class (``<path>/<class>/<name>.png``).

Every image must decode and have exactly the configured ``height x width`` (images are never
resized silently); it is converted to ``channels`` (1 = grey ``L``, 3 = ``RGB``). An unreadable
file (``unreadable_image``) or one of another size (``wrong_size``) is a rejects row with the
file and its 1-based position in the sorted listing. Classes are the sorted sub-folder names.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from kexue.data.images.imageset import ImageFormatError, ImageSet, RawImages, reject_rows

EXTENSIONS = (".png", ".jpg", ".jpeg")


def parse_image_files(items: list[tuple[str, str, bytes]], classes: list[str], height: int,
                      width: int, channels: int) -> ImageSet:
    """``(file, class, bytes)`` per image (in listing order) -> ImageSet ``(N, H, W, C)``."""
    from PIL import Image, UnidentifiedImageError

    mode = {1: "L", 3: "RGB"}[channels]
    images, labels, files, records, bad = [], [], [], [], []
    for pos, (name, cls, data) in enumerate(items, start=1):
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                pixels = np.asarray(im.convert(mode), dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            bad.append((name, pos, "unreadable_image", f"{type(exc).__name__}: {exc}", name))
            continue
        if pixels.shape[:2] != (height, width):
            bad.append((name, pos, "wrong_size", f"{pixels.shape[1]}x{pixels.shape[0]} (WxH), "
                        f"expected {width}x{height}", name))
            continue
        images.append(pixels.reshape(height, width, channels))
        labels.append(classes.index(cls))
        files.append(name)
        records.append(pos)
    stack = (np.stack(images) if images else np.zeros((0, height, width, channels), np.uint8))
    return ImageSet(images=stack, labels=np.asarray(labels, dtype=np.int64),
                    file=np.asarray(files, dtype=object), record=np.asarray(records, np.int64),
                    classes=list(classes), source="folder", rejects=reject_rows(bad),
                    read=len(items))


class ImageFolderDataset(AbstractDataset[None, RawImages]):
    """``<path>/<class>/*.{png,jpg,jpeg}``, read lazily.

    Args:
        path: The root folder.
        height, width: Required image size in pixels.
        channels: 1 (grey) or 3 (RGB).
        metadata: Kedro-Viz metadata.
    """

    def __init__(self, *, path: str, height: int = 28, width: int = 28, channels: int = 1,
                 metadata: dict[str, Any] | None = None) -> None:
        if channels not in (1, 3):
            raise DatasetError(f"ImageFolderDataset channels={channels}: use 1 or 3")
        self._path, self.metadata = Path(path), metadata
        self._h, self._w, self._c = int(height), int(width), int(channels)

    def _classes(self) -> list[str]:
        if not self._path.is_dir():
            return []
        return sorted(p.name for p in self._path.iterdir() if p.is_dir())

    def preflight(self) -> str | None:
        if self._classes():
            return None
        return (f"No class folders in {self._path} (expected <class>/<image>.png|jpg). Fix: put "
                "the images there, or choose another image_ingest.source.")

    def _read(self) -> ImageSet:
        classes = self._classes()
        if not classes:
            raise ImageFormatError(self.preflight() or "")
        items = []
        for cls in classes:
            for p in sorted((self._path / cls).iterdir()):
                if p.is_file() and p.suffix.lower() in EXTENSIONS:
                    items.append((p.relative_to(self._path).as_posix(), cls, p.read_bytes()))
        return parse_image_files(items, classes, self._h, self._w, self._c)

    def load(self) -> RawImages:
        return RawImages("folder", self._read, self.preflight())

    def save(self, data: None) -> None:
        raise DatasetError("ImageFolderDataset is read-only: raw data is never written")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "size": [self._h, self._w, self._c]}
