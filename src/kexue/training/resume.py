"""Exact resume after a crash: data order and randomness that depend only on seed and epoch/step.

Lightning checkpoints hold no RNG state, and a resumed fit re-creates the loader. So:

* :class:`EpochSeededSampler` shuffles with ``seed`` and the epoch number (Lightning calls
  ``set_epoch``), not with a generator whose state lives in the process;
* :class:`StepSeed` re-seeds torch (dropout) before every micro-batch from ``seed`` and the
  global batch counter;
* :func:`checkpointing` saves at every epoch end (keeping the two newest), so a SIGKILL mid-epoch
  resumes at the start of that epoch and replays it identically.

* :class:`EpochIndexSampler` hands ``(seed, epoch, index)`` to Datasets that draw per item.

Together an interrupted and resumed fit ends with the same weights as an uninterrupted one (tested
with a real SIGKILL).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import Sampler


class EpochSeededSampler(Sampler[int]):
    """A random permutation of ``range(n)`` drawn from ``(seed, epoch)`` only."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class EpochIndexSampler(EpochSeededSampler):
    """Like :class:`EpochSeededSampler` but yields ``(seed, epoch, index)``, so a Dataset that
    draws at random per item (the entity linker's pair sampling) can seed its draw from them."""

    def __iter__(self) -> Iterator[Any]:
        return ((self.seed, self.epoch, i) for i in super().__iter__())


class StepSeed(L.Callback):
    """``torch.manual_seed(f(seed, epoch, batch_idx))`` before each training micro-batch."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        torch.manual_seed((self.seed * 1_000_003 + trainer.current_epoch) * 100_003 + batch_idx)


def checkpointing(dirpath: Any) -> ModelCheckpoint:
    """Save at every epoch end into ``dirpath`` (``epoch=E-step=S.ckpt``), keeping the two newest."""
    return ModelCheckpoint(dirpath=str(dirpath), filename="{epoch}-{step}", every_n_epochs=1,
                           save_top_k=2, monitor="step", mode="max", save_last=False,
                           save_on_train_epoch_end=True)


class ResumePlan:
    """What a fit needs to be resumable (or nothing, without a checkpoint store).

    Args:
        checkpoints: A :class:`kexue.io.checkpoints.CheckpointStore`, or None (plain fit).
        n: Training-set size.
        seed: The fit's seed.
        per_item: Hand ``(seed, epoch, index)`` to the Dataset (:class:`EpochIndexSampler`).
    """

    def __init__(self, checkpoints: Any, n: int, seed: int, per_item: bool = False) -> None:
        self.store = checkpoints
        self.callbacks: list[L.Callback] = []
        self.trainer_overrides: dict[str, Any] = {}
        self.ckpt_path: str | None = None
        self.sampler: Sampler | None = None
        if checkpoints is not None:
            self.sampler = (EpochIndexSampler if per_item else EpochSeededSampler)(n, seed)
            self.callbacks = [StepSeed(seed), checkpointing(checkpoints.path)]
            self.trainer_overrides = {"enable_checkpointing": True}
            found = checkpoints.resumable()
            self.ckpt_path = str(found) if found else None

    def loader_kwargs(self, **plain: Any) -> dict[str, Any]:
        """DataLoader ordering arguments: the seeded sampler, or ``plain`` (e.g. shuffle=True)."""
        return {"sampler": self.sampler} if self.sampler is not None else plain

    def finish(self) -> None:
        """After a finished fit: clear the checkpoints (the next run trains afresh)."""
        if self.store is not None:
            self.store.clear()
