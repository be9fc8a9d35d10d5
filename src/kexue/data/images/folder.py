"""A folder of PNG / JPEG images, one sub-folder per class (``<path>/<class>/<name>.png``).

Every image must decode, hold 8-bit pixels and have exactly the configured ``height x width``
(images are never resized or clipped silently); it is converted to ``channels`` (1 = grey ``L``,
3 = ``RGB``). Every entry of the folder is read and counted: an unreadable file
(``unreadable_image``), one of another size (``wrong_size``), one with 16-bit / 32-bit / float
pixels (``unsupported_mode``: converting them to 8 bits would clip) and anything that is not
``<class>/<name>.png|jpg|jpeg`` (``unsupported_file``: another extension, a nested folder, a
file beside the class folders) is a rejects row with its path and its 1-based position in the
sorted listing (root entries first, then each class folder). Classes are the sorted sub-folder
names.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from kexue.data.images.imageset import ImageFormatError, ImageSet, RawImages, reject_rows

EXTENSIONS = (".png", ".jpg", ".jpeg")
EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"})


def parse_image_files(items: list[tuple[str, str, bytes | str]], classes: list[str], height: int,
                      width: int, channels: int) -> ImageSet:
    """``(file, class, bytes)`` per entry (in listing order) -> ImageSet ``(N, H, W, C)``.

    An entry whose third field is a ``str`` instead of bytes is one the listing could not
    take (``unsupported_file``, the string says why); it is counted and rejected.
    """
    from PIL import Image, UnidentifiedImageError

    mode = {1: "L", 3: "RGB"}[channels]
    images, labels, files, records, bad = [], [], [], [], []
    for pos, (name, cls, data) in enumerate(items, start=1):
        if isinstance(data, str):
            bad.append((name, pos, "unsupported_file", data, name))
            continue
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                if im.mode not in EIGHT_BIT_MODES:
                    bad.append((name, pos, "unsupported_mode", f"PIL mode {im.mode}: not 8-bit; "
                                "convert the file to 8-bit grey or RGB", name))
                    continue
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
        items: list[tuple[str, str, bytes | str]] = [
            (p.name, "", "not in a class folder (<class>/<image>)")
            for p in sorted(self._path.iterdir()) if not p.is_dir()]
        for cls in classes:
            for p in sorted((self._path / cls).iterdir()):
                name = p.relative_to(self._path).as_posix()
                if p.is_dir():
                    items.append((name, cls, "a nested folder: images must lie directly in "
                                             f"{cls}/ (nested folders are not read)"))
                elif p.suffix.lower() not in EXTENSIONS:
                    items.append((name, cls, f"extension {p.suffix or '(none)'!r}: only "
                                             f"{', '.join(EXTENSIONS)} are read"))
                else:
                    try:
                        items.append((name, cls, p.read_bytes()))
                    except OSError as exc:  # e.g. a broken link, no read permission
                        items.append((name, cls, f"cannot be read ({exc.strerror or exc})"))
        return parse_image_files(items, classes, self._h, self._w, self._c)

    def load(self) -> RawImages:
        return RawImages("folder", self._read, self.preflight())

    def save(self, data: None) -> None:
        raise DatasetError("ImageFolderDataset is read-only: raw data is never written")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "size": [self._h, self._w, self._c]}
