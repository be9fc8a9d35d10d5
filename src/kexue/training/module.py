"""Base LightningModule: a pure loss shared by train/val/test, logging kept apart.

Subclasses implement EITHER :meth:`KexueModule.loss_terms` (preferred: the loss as sums over
normaliser groups, plus :meth:`KexueModule.loss_counts`, see :mod:`kexue.training.loss`) OR
:meth:`KexueModule.compute_loss` (a per-batch loss, treated as a mean over samples). Both must be
side-effect free (no ``self.log``): the FGM and gradient-penalty callbacks recompute the loss
through :meth:`KexueModule.training_objective` on perturbed embeddings.

Training back-propagates :meth:`KexueModule.training_objective`: the per-batch mean, or -- while
:class:`kexue.training.accumulation.ExactAccumulation` has set :attr:`loss_normalizer` to the
accumulation window's counts -- the same sums divided by the window's counts, so that ``k``
micro-batches give exactly the big batch's gradient.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from kexue.training.config import OptimizerConfig
from kexue.training.loss import SAMPLES, LossTerms
from kexue.training.optim import build_optimizer, build_scheduler


class KexueModule(L.LightningModule):
    """LightningModule with an injected optimizer config and a pure ``compute_loss``.

    Args:
        optim: Optimizer / scheduler config (see ``kexue.training.optim``).
    """

    def __init__(self, optim: OptimizerConfig | None = None) -> None:
        super().__init__()
        self.optim_cfg = optim or OptimizerConfig()
        # Set by ExactAccumulation for the current training micro-batch only (None otherwise):
        # group -> window count / k, and this micro-batch's own counts (a consistency check).
        self.loss_normalizer: dict[str, float] | None = None
        self.expected_counts: dict[str, float] | None = None

    # -- to implement (one of the two) -----------------------------------------------------------
    def loss_terms(self, batch: Any) -> LossTerms:
        """The loss of ``batch`` as :class:`LossTerms`. Pure: no logging, no state changes.

        Default: :meth:`compute_loss` read as a mean over the batch's samples.
        """
        if type(self).compute_loss is KexueModule.compute_loss:
            raise NotImplementedError(f"{type(self).__name__} must implement loss_terms(batch) "
                                      "or compute_loss(batch)")
        loss, metrics = self.compute_loss(batch)
        n = float(_batch_size(batch))
        return LossTerms({"loss": loss * n}, {"loss": SAMPLES}, {SAMPLES: n}, metrics=metrics)

    def compute_loss(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return ``(loss, metrics)``: the per-batch mean. Default: from :meth:`loss_terms`."""
        if type(self).loss_terms is KexueModule.loss_terms:
            raise NotImplementedError(f"{type(self).__name__} must implement loss_terms(batch) "
                                      "or compute_loss(batch)")
        terms = self.loss_terms(batch)
        return terms.mean(), terms.metrics

    def loss_counts(self, batch: Any) -> dict[str, float]:
        """Elements per normaliser group in ``batch``, without a forward pass (cheap).

        Must agree with ``loss_terms(batch).counts``; ExactAccumulation sums it over each window
        before the window's first micro-batch runs. Default: ``{"samples": batch size}``.
        """
        return {SAMPLES: float(_batch_size(batch))}

    def training_objective(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss back-propagated in training (pure given :attr:`loss_normalizer`)."""
        if self.loss_normalizer is None:
            return self.compute_loss(batch)
        terms = self.loss_terms(batch)
        if self.expected_counts is not None:
            for group, n in terms.counts.items():
                want = self.expected_counts.get(group)
                if want is None or abs(float(n) - want) > 1e-6 * max(1.0, abs(want)):
                    raise RuntimeError(
                        f"{type(self).__name__}.loss_counts(batch) gave {self.expected_counts} "
                        f"but loss_terms(batch).counts is {dict(terms.counts)}: exact "
                        "accumulation needs both to count the same elements. Fix "
                        "loss_counts, or set trainer.exact_accumulation: false.")
        return terms.mean(self.loss_normalizer), terms.metrics

    # -- shared step ----------------------------------------------------------------------------
    def model_step(self, batch: Any, stage: str) -> torch.Tensor:
        loss, metrics = (self.training_objective(batch) if stage == "train"
                         else self.compute_loss(batch))
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
