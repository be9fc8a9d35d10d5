"""Fit a module on in-memory tensors: seeded / resumable loader, epoch rows, wall time."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from kexue.training.config import TrainerConfig
from kexue.training.history import EpochMetrics
from kexue.training.resume import ResumePlan, fit_identity
from kexue.training.trainer import build_trainer


def fit_tensors(module: L.LightningModule, data: torch.Tensor, batch_size: int,
                trainer_cfg: TrainerConfig, seed: int, checkpoints: Any = None,
                drop_last: bool = False) -> tuple[L.Trainer, list[dict[str, Any]], float]:
    """``trainer.fit`` on batches ``(data[i],)`` via :func:`build_trainer`, resumable when a
    :class:`~kexue.io.checkpoints.CheckpointStore` is given (:class:`ResumePlan`).

    Returns:
        ``(trainer, epoch rows of EpochMetrics, wall seconds of the fit)``.
    """
    plan = ResumePlan(checkpoints, len(data), seed,
                      identity=fit_identity(module, trainer_cfg, data))
    loader = DataLoader(TensorDataset(data), batch_size=batch_size, drop_last=drop_last,
                        **trainer_cfg.loader_kwargs(), **plan.loader_kwargs(shuffle=True))
    epochs = EpochMetrics()
    trainer = build_trainer(trainer_cfg, callbacks=[epochs, *plan.callbacks],
                            **plan.trainer_overrides)
    t0 = time.perf_counter()
    trainer.fit(module, loader, ckpt_path=plan.ckpt_path)
    seconds = time.perf_counter() - t0
    plan.finish()
    return trainer, epochs.rows, seconds
