"""Fit an :class:`MLPClassifier` on in-memory tensors with ``build_trainer``, recording history.

Used by the ``tricks`` pipeline nodes and by ``bench/bench_framework_overhead.py`` (so the bench
times exactly the node's code path).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import lightning as L
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset

from kexue.models.mlp.model import MLPClassifier, MLPConfig
from kexue.training.config import OptimizerConfig, TrainerConfig
from kexue.training.history import EpochMetrics
from kexue.training.resume import ResumePlan, data_digest, fit_identity
from kexue.training.trainer import build_trainer

HISTORY_COLUMNS = ["epoch", "optimizer_steps", "train_loss", "train_acc", "val_loss", "val_acc"]


class EpochHistory(EpochMetrics):
    """:class:`kexue.training.history.EpochMetrics` rows as the ``tricks`` history table.

    ``train_loss`` / ``train_acc`` are the epoch means of the logged micro-batch values (model in
    train mode, dropout on, like Keras' progress bar); ``val_*`` come from the validation pass that
    Lightning runs at the end of each epoch, before ``on_train_epoch_end``. The rows are kept in
    checkpoints (a resumed fit keeps its earlier epochs).
    """

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=HISTORY_COLUMNS)


@dataclass
class FitResult:
    """What :func:`fit_classifier` returns: the trained module, its history and run statistics."""

    module: MLPClassifier
    history: pd.DataFrame
    optimizer_steps: int
    samples_seen: int
    wall_seconds: float
    processes: int = 1                   # data-parallel ranks (ddp_spawn / torchrun)


def fit_classifier(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    model_cfg: MLPConfig,
    optim_cfg: OptimizerConfig,
    trainer_cfg: TrainerConfig,
    batch_size: int,
    seed: int,
    val_batch_size: int = 1000,
    num_threads: int = 0,
    init_state: dict[str, torch.Tensor] | None = None,
    checkpoints: Any = None,
    **trainer_overrides: Any,
) -> FitResult:
    """Seed, build the model and a ``build_trainer`` Trainer, fit, and return the history.

    Runs that share ``seed`` start from identical weights and see the training samples in the
    same order (the shuffling generator is seeded from ``seed`` too), whatever their batch size.

    Args:
        train: ``(x, y)`` training tensors, ``x`` (N, in_dim) float, ``y`` (N,) int64.
        val: Validation tensors evaluated after every epoch, or None.
        model_cfg: MLP architecture.
        optim_cfg: Optimizer / scheduler.
        trainer_cfg: Trainer settings (``accumulate_grad_batches`` etc.).
        batch_size: Micro-batch size of the training DataLoader.
        seed: Seed for ``lightning.seed_everything`` and the shuffling generator.
        val_batch_size: Batch size of the validation pass.
        num_threads: ``torch.set_num_threads`` during the fit (restored afterwards); 0 leaves it.
            Batch-1 CPU training of a small MLP is fastest on ONE thread: with two intra-op
            threads on a busy 2-core machine we measured a 10x slowdown (OpenMP spin-waits).
        init_state: Start from these weights (``MLPClassifier.model`` state dict: warm start)
            instead of the seeded initialisation.
        checkpoints: A :class:`kexue.io.checkpoints.CheckpointStore`: checkpoint every epoch,
            resume from the newest good checkpoint, clear the folder when done; data order and
            dropout then depend only on ``seed`` and epoch/step (``kexue.training.resume``), so
            a killed and re-run fit ends with the same weights.
        **trainer_overrides: Passed to ``build_trainer`` (e.g. ``num_sanity_val_steps``).
    """
    L.seed_everything(seed, workers=True, verbose=False)
    module = MLPClassifier(model_cfg, optim_cfg)
    if init_state is not None:
        module.model.load_state_dict(init_state)
    plan = ResumePlan(checkpoints, len(train[0]), seed, identity={
        **fit_identity(module, trainer_cfg, list(train)), "batch_size": batch_size,
        "init": None if init_state is None else data_digest(list(init_state.values()))})
    train_loader = DataLoader(TensorDataset(*train), batch_size=batch_size,
                              **trainer_cfg.loader_kwargs(),
                              **plan.loader_kwargs(**_shuffle(trainer_cfg, seed)))
    val_loader = None
    if val is not None:
        val_loader = DataLoader(TensorDataset(*val), batch_size=val_batch_size, shuffle=False,
                                **trainer_cfg.loader_kwargs())
    history = EpochHistory()
    overrides: dict[str, Any] = {"num_sanity_val_steps": 0}
    overrides.update(trainer_overrides)
    overrides.update(plan.trainer_overrides)
    trainer = build_trainer(trainer_cfg, callbacks=[history, *plan.callbacks], **overrides)
    previous_threads = torch.get_num_threads()
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    try:
        start = time.perf_counter()
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader,
                    ckpt_path=plan.ckpt_path)
        wall = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous_threads)
    batches = trainer.num_training_batches           # after limit_train_batches
    samples = int(min(len(train[0]), batches * batch_size * trainer.world_size)
                  * trainer.current_epoch)
    plan.finish()
    module = module.cpu().eval()
    return FitResult(module, history.frame(), int(trainer.global_step), samples, wall,
                     int(trainer.world_size))


def _shuffle(trainer_cfg: TrainerConfig, seed: int) -> dict[str, Any]:
    """Seeded shuffling; under ``ddp_spawn`` without the generator (a ``torch.Generator`` does
    not survive the spawn pickling, and Lightning's DistributedSampler replaces the order)."""
    if trainer_cfg.strategy == "ddp_spawn":
        return {"shuffle": True}
    return {"shuffle": True, "generator": torch.Generator().manual_seed(seed)}


@torch.no_grad()
def evaluate_classifier(module: MLPClassifier, x: torch.Tensor, y: torch.Tensor,
                        batch_size: int = 1000) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``module`` (eval mode) on ``(x, y)``."""
    module.eval()
    correct, loss_sum = 0, 0.0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        logits = module(xb)                                               # (B, n_classes)
        loss_sum += float(torch.nn.functional.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(-1) == yb).sum())
    n = max(1, len(x))
    return {"acc": correct / n, "loss": loss_sum / n}
