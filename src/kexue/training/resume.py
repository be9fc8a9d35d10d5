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
from torch.utils.data import DistributedSampler


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochSeededSampler(DistributedSampler):
    """A random permutation of ``range(n)`` drawn from ``(seed, epoch)`` only.

    Under DDP it shards itself: rank ``r`` of ``W`` takes positions ``r, r+W, ...`` of the SAME
    permutation (padded with its head to a multiple of ``W``, as ``DistributedSampler`` does), so
    with batch ``b`` the ``W`` ranks' step-``t`` batches together are exactly one process's
    step-``t`` batch of ``W*b``. It is a ``DistributedSampler`` only so that Lightning keeps it
    instead of wrapping it in one that re-shuffles (``DistributedSamplerWrapper`` permutes the
    positions again with ``PL_GLOBAL_SEED``); its ``__init__`` needs no process group.
    """

    def __init__(self, n: int, seed: int) -> None:   # deliberately no DistributedSampler init
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        rank, world = _rank_world()
        if world == 1:
            return order
        total = -(-self.n // world) * world
        order = (order * (-(-total // max(1, self.n))))[:total]
        return order[rank::world]

    def __iter__(self) -> Iterator[int]:
        return iter(self._order())

    def __len__(self) -> int:
        world = _rank_world()[1]
        return -(-self.n // world)


class EpochIndexSampler(EpochSeededSampler):
    """Like :class:`EpochSeededSampler` but yields ``(seed, epoch, index)``, so a Dataset that
    draws at random per item (the entity linker's pair sampling) can seed its draw from them."""

    def __iter__(self) -> Iterator[Any]:
        return ((self.seed, self.epoch, i) for i in self._order())


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
        identity: What else makes this fit this fit (:func:`fit_identity`): checkpoints of
            another identity are moved aside instead of resumed
            (:meth:`~kexue.io.checkpoints.CheckpointStore.match_identity`).
    """

    def __init__(self, checkpoints: Any, n: int, seed: int, per_item: bool = False,
                 identity: dict[str, Any] | None = None) -> None:
        self.store = checkpoints
        self.callbacks: list[L.Callback] = []
        self.trainer_overrides: dict[str, Any] = {}
        self.ckpt_path: str | None = None
        self.sampler: DistributedSampler | None = None
        if checkpoints is not None:
            self.sampler = (EpochIndexSampler if per_item else EpochSeededSampler)(n, seed)
            self.callbacks = [StepSeed(seed), checkpointing(checkpoints.path)]
            self.trainer_overrides = {"enable_checkpointing": True}
            from kexue.launch import is_rank_zero

            if is_rank_zero():   # one process moves stale checkpoints aside
                checkpoints.match_identity({"n": int(n), "seed": int(seed),
                                            "per_item": per_item, **(identity or {})})
            found = checkpoints.resumable()
            self.ckpt_path = str(found) if found else None

    def loader_kwargs(self, **plain: Any) -> dict[str, Any]:
        """DataLoader ordering arguments: the seeded sampler, or ``plain`` (e.g. shuffle=True)."""
        return {"sampler": self.sampler} if self.sampler is not None else plain

    def finish(self) -> None:
        """After a finished fit: clear the checkpoints (the next run trains afresh); under torchrun
        / srun only global rank 0 touches the shared folder."""
        from kexue.launch import is_rank_zero

        if self.store is not None and is_rank_zero():
            self.store.clear()


def fit_identity(module: torch.nn.Module, trainer_cfg: Any, data: Any = None) -> dict[str, Any]:
    """What a resumed fit must share with the killed one besides ``n`` and ``seed``: the
    module's class and parameter shapes, its optimizer settings (``optim_cfg``), the trainer
    settings, and a digest of the training data (:func:`data_digest`)."""
    import dataclasses

    optim = getattr(module, "optim_cfg", None)
    return {
        "module": type(module).__qualname__,
        "shapes": {k: list(v.shape) for k, v in module.state_dict().items()
                   if isinstance(v, torch.Tensor)},    # (not extra state such as NVAE's)
        "optimizer": dataclasses.asdict(optim) if dataclasses.is_dataclass(optim) else None,
        "trainer": dataclasses.asdict(trainer_cfg) if dataclasses.is_dataclass(trainer_cfg)
        else None,
        "data": None if data is None else data_digest(data),
    }


def data_digest(data: Any) -> str:
    """sha256 of tensors (their bytes), of sequences holding tensors, or of anything's
    ``repr`` (nested id lists, texts)."""
    import hashlib

    h = hashlib.sha256()

    def feed(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            h.update(str((x.dtype, tuple(x.shape))).encode())
            h.update(x.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(x, (list, tuple)) and any(isinstance(i, torch.Tensor) for i in x):
            h.update(f"[{len(x)}".encode())
            for item in x:
                feed(item)
        else:                   # id lists, texts: one repr (fast for nested lists of ints)
            h.update(repr(x).encode())

    feed(data)
    return h.hexdigest()
