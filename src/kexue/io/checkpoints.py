"""Crash-safe training checkpoints at a fixed, unversioned path per model (not per Kedro run), so
re-running the same ``kedro run`` after a SIGKILL finds them.

:class:`CheckpointDirDataset` (catalog) loads a :class:`CheckpointStore`: the folder Lightning's
``ModelCheckpoint`` writes to, plus the I/O the training code needs around it -- pick the newest
checkpoint that loads (a truncated or corrupt one is renamed ``*.corrupt`` with a warning and the
previous one is used, or training starts from scratch: never a crash loop; a file the system
cannot read -- permissions, a disk error -- stops the run and stays in place) and clear the folder
once the node has finished (the next scheduled run must train afresh, not "resume" a finished run).
Checkpoints written by a different fit (another config, seed or training data: ``fit_identity.json``)
are moved aside, never resumed.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)
_STEP = re.compile(r"step=(\d+)")


@dataclass
class CheckpointStore:
    """A checkpoint folder. ``path`` is where ``ModelCheckpoint(dirpath=...)`` writes."""

    path: Path

    def candidates(self) -> list[Path]:
        """``*.ckpt`` files, newest (highest ``step=``) first."""
        if not self.path.is_dir():
            return []
        files = [p for p in self.path.iterdir() if p.suffix == ".ckpt" and p.is_file()]

        def step(p: Path) -> int:
            m = _STEP.search(p.name)
            return int(m.group(1)) if m else -1

        return sorted(files, key=lambda p: (step(p), p.stat().st_mtime), reverse=True)

    def resumable(self) -> Path | None:
        """The newest checkpoint that loads and holds Lightning's training state, or None."""
        for ckpt in self.candidates():
            try:
                state = torch.load(ckpt, map_location="cpu", weights_only=False)
                if not isinstance(state, dict) or not {"state_dict", "loops"} <= set(state):
                    raise ValueError("not a Lightning training checkpoint")
            except OSError as exc:
                # the file system failed (permissions, a disk error), not the file's content:
                # the checkpoint may be good, so it stays where it is and the run stops
                raise DatasetError(
                    f"Checkpoint {ckpt} could not be read ({type(exc).__name__}: {exc}). Fix the "
                    "file system problem and re-run: the file was left in place, and the run "
                    "resumes from it") from exc
            except Exception as exc:            # noqa: BLE001 - corrupt content: skipped
                bad = ckpt.with_name(ckpt.name + ".corrupt")
                ckpt.rename(bad)
                logger.warning("checkpoint %s is unreadable (%s: %s); moved to %s and trying the "
                               "previous one", ckpt, type(exc).__name__, exc, bad.name)
                continue
            return ckpt
        return None

    def match_identity(self, identity: dict[str, Any]) -> None:
        """Keep the checkpoints only if they belong to this fit.

        ``identity`` (JSON-able: model class and shapes, trainer / optimizer settings, seed,
        a digest of the training data) is written beside the checkpoints. When checkpoints are
        there but were written for another identity (or for none, by an older version), a
        resume would silently continue THAT fit -- old learning rate, old data -- so they are
        moved to a sibling folder ``<name>.stale-<UTC time>`` (nothing is deleted) with a
        warning naming what changed, and this fit starts afresh.
        """
        ident = json.dumps(identity, sort_keys=True, default=str)
        marker = self.path / IDENTITY_FILE
        old = marker.read_text(encoding="utf-8") if marker.is_file() else None
        if self.candidates() and old != ident:
            stale = self.path.with_name(
                f"{self.path.name}.stale-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
            shutil.move(str(self.path), str(stale))
            changed = _changed_keys(json.loads(old) if old else {}, json.loads(ident))
            logger.warning("checkpoints in %s were written by another fit (changed: %s); moved "
                           "to %s, training from scratch", self.path, ", ".join(changed) or
                           "no identity recorded", stale)
        self.path.mkdir(parents=True, exist_ok=True)
        marker.write_text(ident, encoding="utf-8")

    def clear(self) -> None:
        """Remove the folder after a finished fit."""
        shutil.rmtree(self.path, ignore_errors=True)


IDENTITY_FILE = "fit_identity.json"


def _changed_keys(old: dict[str, Any], new: dict[str, Any], where: str = "") -> list[str]:
    """Dotted keys whose values differ between two identities (both parsed from JSON)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changed_keys(a, b, f"{where}{key}.")
        elif a != b:
            out.append(f"{where}{key}")
    return out


class CheckpointDirDataset(AbstractDataset[None, CheckpointStore]):
    """Catalog entry for a checkpoint folder; ``load()`` gives a :class:`CheckpointStore`."""

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> CheckpointStore:
        return CheckpointStore(self._path)

    def save(self, data: Any) -> None:
        raise DatasetError("CheckpointDirDataset is written by Lightning during training, "
                           "not saved by nodes")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
