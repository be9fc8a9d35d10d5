"""``TorchDataset``: a versionable Kedro dataset for model bundles saved with ``torch.save``.

A *bundle* is a plain dict such as ``{"config": {...}, "state_dict": {...}, "vocab": [...]}``:
tensors, numbers, strings, lists and dicts only, so it loads with ``weights_only=True`` (no
arbitrary unpickling) and the caller rebuilds the module from ``config``. Tensors are moved to the
CPU on save so GPU runs produce artifacts that load anywhere.

Catalog example::

    tricks_models:
      type: kexue.io.TorchDataset
      filepath: ${globals:data_root}/06_models/tricks_models.pt
      versioned: ${globals:versioned}
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import fsspec
import torch
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, get_filepath_str, get_protocol_and_path


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


class TorchDataset(AbstractVersionedDataset[dict, dict]):
    """Save/load a dict bundle with ``torch.save`` / ``torch.load(weights_only=True)``."""

    def __init__(self, *, filepath: str, version: Version | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol)
        self.metadata = metadata
        super().__init__(filepath=PurePosixPath(path), version=version,
                         exists_function=self._fs.exists, glob_function=self._fs.glob)

    def load(self) -> dict:
        path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(path, "rb") as f:
            return torch.load(f, map_location="cpu", weights_only=True)

    def save(self, data: dict) -> None:
        if not isinstance(data, dict):
            raise DatasetError(f"TorchDataset saves a dict bundle, got {type(data).__name__}; "
                               "return {'config': ..., 'state_dict': model.state_dict()} from the node")
        path = get_filepath_str(self._get_save_path(), self._protocol)
        self._fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        with self._fs.open(path, "wb") as f:
            torch.save(_to_cpu(data), f)

    def _exists(self) -> bool:
        try:
            path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(path)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "version": self._version}
