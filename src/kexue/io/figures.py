"""``kexue.io.FigureDataset``: kedro-datasets' ``matplotlib.MatplotlibDataset`` that can also be
read back.

``MatplotlibDataset`` is save-only (its ``load`` raises), so a later node (the ``reporting``
pipeline) could not embed a figure another pipeline saved. This subclass keeps every saving
behaviour of the parent (versioning, ``save_args``, a figure / list / dict of figures) and adds:

* ``load()`` -> the PNG file's bytes (one file; a dict-saved folder is not loadable);
* ``save(bytes)`` / ``save({name: bytes})``: already-rendered PNG bytes are written as they are.
"""

from __future__ import annotations

from typing import Any

from kedro.io.core import get_filepath_str
from kedro_datasets.matplotlib import MatplotlibDataset

from kexue.io.png import PNG_MAGIC


class FigureDataset(MatplotlibDataset):
    """A PNG figure: saved from a matplotlib ``Figure`` (or PNG bytes), loaded as PNG bytes."""

    def load(self) -> bytes:  # type: ignore[override]
        path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(path, mode="rb") as f:
            return f.read()

    def _write(self, path: str, data: bytes) -> None:
        if not data.startswith(PNG_MAGIC):
            raise ValueError(f"FigureDataset({path}): the bytes given are not a PNG image")
        with self._fs.open(path, **self._fs_open_args_save) as f:
            f.write(data)

    def _save_to_fs(self, full_key_path: str, plot: Any) -> None:
        if isinstance(plot, (bytes, bytearray)):
            self._write(full_key_path, bytes(plot))
        else:
            super()._save_to_fs(full_key_path, plot)
