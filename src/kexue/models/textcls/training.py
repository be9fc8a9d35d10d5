"""One training run of the classifier (a method x a seed) and its scores; no Kedro here.

Every method sees the same data in the same order for a seed: the loader's sampler is
:class:`~kexue.training.resume.EpochSeededSampler` (order = f(seed, epoch)) and the initial
weights come from ``seed_everything(seed)`` before the model is built.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from kexue.models.textcls.model import ClassifierConfig
from kexue.models.textcls.module import ClassifierModule, evaluate, perturbed_accuracy
from kexue.training.config import AdversarialConfig, OptimizerConfig, TrainerConfig
from kexue.training.history import EpochMetrics
from kexue.training.resume import EpochSeededSampler
from kexue.training.trainer import build_trainer


class _Pairs(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}


def encode(texts: list[str], vocab: Any, max_len: int) -> torch.Tensor:
    """Padded char ids ``(N, max_len)`` (0 = padding, unknown chars -> unk)."""
    rows = [vocab.encode(t, max_len=max_len) or [vocab.unk_id] for t in texts]
    out = torch.zeros(len(rows), max_len, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r[:max_len])
    return out


def train_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                 loader_kwargs: dict[str, Any] | None = None) -> DataLoader:
    """The same order for every method at a given seed (see the module doc); ``loader_kwargs``:
    ``TrainerConfig.loader_kwargs()`` (workers, pinned memory)."""
    return DataLoader(_Pairs(x, y), batch_size=batch_size, sampler=EpochSeededSampler(len(y), seed),
                      **(loader_kwargs or {}))


def run(x_train: torch.Tensor, y_train: torch.Tensor, x_dev: torch.Tensor, y_dev: torch.Tensor,
        cfg: ClassifierConfig, optim: OptimizerConfig, trainer_cfg: TrainerConfig,
        adversarial: AdversarialConfig, batch_size: int, seed: int, probe_epsilon: float,
        unseen: np.ndarray | None = None) -> dict[str, Any]:
    """Train one model; dev accuracy / macro-F1 (also on dev rows not in train), accuracy under
    the embedding-space probe, seconds per epoch."""
    L.seed_everything(seed, workers=True, verbose=False)
    module = ClassifierModule(cfg, optim)
    epochs = EpochMetrics()
    trainer = build_trainer(trainer_cfg, adversarial, callbacks=[epochs])
    t0 = time.perf_counter()
    loader = train_loader(x_train, y_train, batch_size, seed, trainer_cfg.loader_kwargs())
    trainer.fit(module, loader)
    seconds = time.perf_counter() - t0
    model = module.model.cpu().eval()
    scores = evaluate(model, x_dev, y_dev)
    robust, norm = perturbed_accuracy(model, x_dev, y_dev, probe_epsilon)
    out = {"seed": seed, "dev_acc": scores["acc"], "dev_macro_f1": scores["macro_f1"],
           "robust_acc": robust, "probe_norm": norm, "probe_epsilon": probe_epsilon,
           "steps": int(trainer.global_step), "epochs": len(epochs.rows),
           "final_train_loss": epochs.rows[-1].get("train_loss") if epochs.rows else None,
           "seconds_per_epoch": seconds / max(1, len(epochs.rows))}
    if unseen is not None and unseen.any():
        mask = torch.from_numpy(unseen)
        out["dev_acc_unseen"] = float((torch.from_numpy(scores["pred"])[mask]
                                       == y_dev[mask]).float().mean())
    return out
