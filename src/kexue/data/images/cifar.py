"""CIFAR-10 "python version", exactly as published: ``cifar-10-python.tar.gz`` or its extracted
``cifar-10-batches-py/`` folder.

Each batch (``data_batch_1..5`` = train, ``test_batch`` = test) is a pickled dict with ``b"data"``
(uint8 ``N x 3072``: 1024 red, 1024 green, 1024 blue values, each 32x32 row-major), ``b"labels"``
(``N`` ints 0..9) and ``b"filenames"``; ``batches.meta`` holds ``b"label_names"``. The pickles are
read with an unpickler that only builds plain containers and numpy arrays (a batch file cannot
run code). Whole-file defects (not a pickle, keys missing, ``data`` not ``N x 3072``, label count
different from ``N``) raise :class:`ImageFormatError`; a label outside 0..9 is a rejects row.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from kexue.data.images.imageset import ImageFormatError, ImageSet, RawImages, concat, reject_rows

TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
TEST = ["test_batch"]
DEFAULT_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"), ("_codecs", "encode")}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def _unpickle(data: bytes, name: str) -> dict:
    try:
        obj = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:          # noqa: BLE001 -- any decoding failure is a file defect
        raise ImageFormatError(f"{name}: not a CIFAR-10 python batch ({type(exc).__name__}: "
                               f"{exc}). Fix: use the files of cifar-10-python.tar.gz.") from None
    if not isinstance(obj, dict):
        raise ImageFormatError(f"{name}: a pickled {type(obj).__name__}, expected a dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def parse_meta(data: bytes, name: str = "batches.meta") -> list[str]:
    """Class names of ``batches.meta``."""
    meta = _unpickle(data, name)
    if "label_names" not in meta:
        raise ImageFormatError(f"{name}: no label_names key (found {sorted(meta)})")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in meta["label_names"]]


def parse_batch(data: bytes, name: str, classes: list[str], split: str) -> ImageSet:
    """One batch -> ImageSet ``(N, 32, 32, 3)``."""
    batch = _unpickle(data, name)
    missing = {"data", "labels"} - set(batch)
    if missing:
        raise ImageFormatError(f"{name}: keys {sorted(missing)} missing (found {sorted(batch)})")
    x = np.asarray(batch["data"])
    y = np.asarray(batch["labels"], dtype=np.int64)
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        raise ImageFormatError(f"{name}: data is {x.dtype} {x.shape}, expected uint8 N x 3072")
    if len(y) != len(x):
        raise ImageFormatError(f"{name}: {len(x)} images but {len(y)} labels")
    bad = (y < 0) | (y >= len(classes))
    rejects = reject_rows([(name, int(i) + 1, "bad_label",
                            f"label {int(y[i])} not in 0..{len(classes) - 1}", str(int(y[i])))
                           for i in np.flatnonzero(bad)])
    keep = ~bad
    images = x[keep].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()   # (N, 32, 32, 3)
    n = len(images)
    return ImageSet(images=images, labels=y[keep], file=np.full(n, name, dtype=object),
                    record=np.flatnonzero(keep).astype(np.int64) + 1, classes=classes,
                    source="cifar10", split=np.full(n, split, dtype=object), rejects=rejects,
                    read=len(x))


def parse_files(files: dict[str, bytes]) -> ImageSet:
    """Batches by base name (``data_batch_1`` ... ``test_batch``, ``batches.meta``)."""
    classes = parse_meta(files["batches.meta"]) if "batches.meta" in files else DEFAULT_CLASSES
    parts = [parse_batch(files[b], b, classes, split)
             for names, split in ((TRAIN, "train"), (TEST, "test")) for b in names if b in files]
    if not parts:
        raise ImageFormatError(f"no CIFAR-10 batch among {sorted(files)}; expected "
                               f"{TRAIN + TEST}")
    return concat(parts, "cifar10")


class Cifar10Dataset(AbstractDataset[None, RawImages]):
    """``cifar-10-python.tar.gz`` (read inside the archive) or a folder of extracted batches.

    Args:
        path: The archive, or a folder holding the batches (directly or under
            ``cifar-10-batches-py/``).
        metadata: Kedro-Viz metadata.
    """

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path, self.metadata = Path(path), metadata

    def _folder(self) -> Path | None:
        for folder in (self._path, self._path / "cifar-10-batches-py"):
            if folder.is_dir() and any((folder / b).is_file() for b in TRAIN + TEST):
                return folder
        return None

    def _archive(self) -> Path | None:
        for p in (self._path, self._path / "cifar-10-python.tar.gz"):
            if p.is_file():
                return p
        return None

    def preflight(self) -> str | None:
        if self._folder() or self._archive():
            return None
        return (f"No CIFAR-10 data at {self._path} (expected cifar-10-python.tar.gz or the "
                "cifar-10-batches-py/ batches). Fix: put the official archive there, or choose "
                "another image_ingest.source.")

    def _read(self) -> ImageSet:
        wanted = set(TRAIN + TEST + ["batches.meta"])
        folder = self._folder()
        if folder is not None:
            return parse_files({p.name: p.read_bytes() for p in folder.iterdir()
                                if p.name in wanted and p.is_file()})
        archive = self._archive()
        try:
            with tarfile.open(archive, "r:*") as tar:
                files = {Path(m.name).name: tar.extractfile(m).read() for m in tar.getmembers()
                         if m.isfile() and Path(m.name).name in wanted}
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ImageFormatError(f"{archive}: not a readable tar.gz ({exc}). Fix: re-download "
                                   "cifar-10-python.tar.gz (170,498,071 bytes).") from None
        return parse_files(files)

    def load(self) -> RawImages:
        return RawImages("cifar10", self._read, self.preflight())

    def save(self, data: None) -> None:
        raise DatasetError("Cifar10Dataset is read-only: raw data is never written")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
