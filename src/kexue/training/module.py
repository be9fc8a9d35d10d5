"""Base LightningModule: a pure ``compute_loss`` shared by train/val/test, logging kept apart.

Subclasses implement :meth:`KexueModule.compute_loss` only. It must be side-effect free (no
``self.log``): the FGM and gradient-penalty callbacks call it again on perturbed embeddings.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from kexue.training.config import OptimizerConfig
from kexue.training.optim import build_optimizer, build_scheduler


class KexueModule(L.LightningModule):
    """LightningModule with an injected optimizer config and a pure ``compute_loss``.

    Args:
        optim: Optimizer / scheduler config (see ``kexue.training.optim``).
    """

    def __init__(self, optim: OptimizerConfig | None = None) -> None:
        super().__init__()
        self.optim_cfg = optim or OptimizerConfig()

    # -- to implement -------------------------------------------------------------------------
    def compute_loss(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return ``(loss, metrics)`` for ``batch``. Pure: no logging, no state changes."""
        raise NotImplementedError

    # -- shared step ----------------------------------------------------------------------------
    def model_step(self, batch: Any, stage: str) -> torch.Tensor:
        loss, metrics = self.compute_loss(batch)
        batch_size = _batch_size(batch)
        self.log(f"{stage}/loss", loss.detach(), prog_bar=stage != "train", batch_size=batch_size,
                 on_step=stage == "train", on_epoch=True)
        for name, value in metrics.items():
            self.log(f"{stage}/{name}", value, batch_size=batch_size, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.model_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.model_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.model_step(batch, "test")

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.optim_cfg, self.parameters())
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else 1
        scheduler = build_scheduler(self.optim_cfg, optimizer, total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }


def _batch_size(batch: Any) -> int:
    """Leading dimension of the first tensor found in ``batch``."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for item in batch:
            if isinstance(item, torch.Tensor) and item.dim() > 0:
                return int(item.shape[0])
    return 1
