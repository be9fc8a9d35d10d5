"""Base LightningModule: a pure loss shared by train/val/test, logging kept apart.

Subclasses implement EITHER :meth:`KexueModule.loss_terms` (preferred: the loss as sums over
normaliser groups, plus :meth:`KexueModule.loss_counts`, see :mod:`kexue.training.loss`) OR
:meth:`KexueModule.compute_loss` (a per-batch loss, treated as a mean over samples). Both must be
side-effect free (no ``self.log``): the FGM and gradient-penalty callbacks recompute the loss
through :meth:`KexueModule.training_objective` on perturbed embeddings.

Training back-propagates :meth:`KexueModule.training_objective`: the per-batch mean, or -- while
:class:`kexue.training.accumulation.ExactAccumulation` has set :attr:`loss_normalizer` to the
accumulation window's counts -- the same sums divided by the window's counts, so that ``k``
micro-batches give exactly the big batch's gradient. ``training_step`` adds the module's
:attr:`KexueModule.objective_terms` (the gradient penalty: one backward for loss + penalty).

Per-step cost (``bench/bench_framework_overhead.py``): training metrics are buffered on the device
and logged once per window (:mod:`kexue.training.step_metrics`), not through ``self.log`` per
micro-batch; no value is read back to the host per step.
"""

from __future__ import annotations

import inspect
from typing import Any

import lightning as L
import torch

from kexue.training.config import OptimizerConfig
from kexue.training.loss import SAMPLES, LossTerms
from kexue.training.optim import build_optimizer, build_scheduler
from kexue.training.step_metrics import StepMetricBuffer

# Plain (non-tensor, non-module) attributes written several times per micro-batch: Lightning's
# hook dispatch sets ``_current_fx_name`` around every hook call, ExactAccumulation the window
# normaliser. ``nn.Module.__setattr__`` checks parameters/buffers/submodules first (~4 us each,
# 12% of a batch-1 step's framework time); these names are never any of those.
_PLAIN_ATTRIBUTES = frozenset({"_current_fx_name", "loss_normalizer", "expected_counts",
                               "_counts_checked", "_count_mismatch"})


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
        self._counts_checked = False                    # first micro-batch checked on the host
        self._count_mismatch: torch.Tensor | None = None   # later ones on the device
        # Training-step values wait here and reach self.log once per window (step_metrics.py).
        self.step_metrics = StepMetricBuffer()
        # Extra objective terms: callables (batch, loss) -> tensor | None, added to the loss
        # that training_step returns (the gradient penalty uses this to share one backward).
        self.objective_terms: list[Any] = []

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PLAIN_ATTRIBUTES:
            object.__setattr__(self, name, value)     # see _PLAIN_ATTRIBUTES
        else:
            super().__setattr__(name, value)

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
        if type(self).loss_terms is KexueModule.loss_terms:
            # compute_loss only: a sample mean; loss * n / N in one factor, none when it is 1
            # (the default loss_terms would compute (loss * n) / N: same value, two more ops).
            loss, metrics = self.compute_loss(batch)
            n = float(_batch_size(batch))
            self._check_samples(n)
            factor = n / max(float(self.loss_normalizer[SAMPLES]), 1e-12)
            return (loss if factor == 1.0 else loss * factor), metrics
        terms = self.loss_terms(batch)
        self._check_counts(terms.counts)
        return terms.mean(self.loss_normalizer), terms.metrics

    def _check_samples(self, n: float) -> None:
        """:meth:`_check_counts` for a sample-mean module (one host number, no dict)."""
        expected = self.expected_counts
        if expected is None:
            return
        want = expected.get(SAMPLES)
        if want is None or abs(n - want) > 1e-6 * max(1.0, abs(want)):
            self._count_error(f"gave {expected} but the batch has {n} samples")

    def _check_counts(self, counts: dict[str, Any]) -> None:
        """``loss_terms(batch).counts`` must equal ``loss_counts(batch)`` (:attr:`expected_counts`).

        Host counts are checked at once. On-device counts are checked at once only on the first
        micro-batch of a fit; later ones are compared on the device and the result is read once
        per epoch by :meth:`raise_count_mismatch` (no host synchronisation per step).
        """
        expected = self.expected_counts
        if expected is None:
            return
        for group, n in counts.items():
            want = expected.get(group)
            tol = 1e-6 * max(1.0, abs(want or 0.0))
            if want is None:
                self._count_error(f"gave {expected} but loss_terms(batch).counts is {counts}")
            elif isinstance(n, torch.Tensor) and self._counts_checked:
                bad = ((n.detach().to(torch.float32) - want).abs() > tol).any()
                self._count_mismatch = bad if self._count_mismatch is None else \
                    self._count_mismatch | bad
            elif abs(float(n) - want) > tol:
                self._count_error(f"gave {expected} but loss_terms(batch).counts is {counts}")
        self._counts_checked = True

    def raise_count_mismatch(self) -> None:
        """Raise if an on-device count compared in :meth:`_check_counts` differed (one sync)."""
        bad, self._count_mismatch = self._count_mismatch, None
        if bad is not None and bool(bad):
            self._count_error("differed from loss_terms(batch).counts in a micro-batch of "
                              f"epoch {self.current_epoch}")

    def _count_error(self, detail: str) -> None:
        raise RuntimeError(
            f"{type(self).__name__}.loss_counts(batch) {detail}: exact accumulation needs both "
            "to count the same elements. Fix loss_counts, or set "
            "trainer.exact_accumulation: false.")

    # -- shared step ----------------------------------------------------------------------------
    def model_step(self, batch: Any, stage: str) -> torch.Tensor:
        """The loss of ``batch`` for ``stage`` (train / val / test), its metrics logged.

        A metric is a 0-d batch mean or a ``(B,)`` vector of per-sample values (fewer ops per
        step: the mean is taken once per logging window). Training values are buffered on the
        device (:class:`StepMetricBuffer`, flushed by :meth:`on_train_batch_end`); validation
        and test values are logged per batch.
        """
        loss, metrics = (self.training_objective(batch) if stage == "train"
                         else self.compute_loss(batch))
        batch_size = _batch_size(batch)
        if stage == "train":
            self.step_metrics.add("loss", loss, batch_size)
            for name, value in metrics.items():
                self.step_metrics.add(name, value, batch_size)
            return loss
        self.log(f"{stage}/loss", loss.detach(), prog_bar=True, batch_size=batch_size,
                 on_step=False, on_epoch=True)
        for name, value in metrics.items():
            if value.dim() == 1 and value.numel() > 1:   # per-sample values
                value = value.to(torch.promote_types(value.dtype, torch.float32)).mean()
            self.log(f"{stage}/{name}", value, batch_size=batch_size, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self.model_step(batch, "train")
        for term in self.objective_terms:
            extra = term(batch, loss)
            if extra is not None:
                loss = loss + extra
        return loss

    def on_fit_start(self) -> None:
        self.step_metrics.clear()
        self._counts_checked = False
        self._count_mismatch = None

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._trainer is not None and self.step_metrics.due(self.trainer):
            self.step_metrics.flush(self.log, self.trainer, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.model_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.model_step(batch, "test")

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.optim_cfg, self.parameters())
        if self.optim_cfg.scheduler == "constant":   # LambdaLR(1) would cost a call per step
            return {"optimizer": optimizer}
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else 1
        scheduler = build_scheduler(self.optim_cfg, optimizer, total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }


# Lightning inspects ``training_step``'s signature before every batch (is ``batch_idx`` taken?);
# a precomputed ``__signature__`` makes that lookup ~4x cheaper (16 us -> 5 us per micro-batch).
KexueModule.training_step.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    KexueModule.training_step)


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
