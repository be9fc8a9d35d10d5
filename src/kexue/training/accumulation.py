"""Exact gradient accumulation on top of Lightning's ``accumulate_grad_batches`` (post 6794).

Lightning divides every micro-batch loss by ``k = accumulate_grad_batches`` and steps after ``k``
micro-batches *and* on the last batch of an epoch. That equals one big batch of the concatenated
micro-batches only when every micro-batch has the same number of loss elements: the last partial
window of an epoch (``w < k``) is under-weighted by ``w / k`` (Lightning issue #19987), and a
token- or mention-mean loss weights micro-batches equally although they hold different numbers
of tokens (the project's title generator and entity linker: 3.3e-2 max parameter difference after
one SGD step on a tiny title model with k = 2).

:class:`ExactAccumulation` makes every optimizer step equal to the big-batch step **for each
normaliser group of the loss** (:mod:`kexue.training.loss`). It wraps the training loader in
:class:`AccumulationWindows`, which reads one window (``k`` micro-batches) ahead and sums
``module.loss_counts(batch)`` per group, so before micro-batch ``j`` runs the module knows the
window's totals ``N_g``; it then back-propagates::

    k * sum_t w_t * S_{t,j} / N_{g(t)}        (Lightning divides by k again)

whose sum over the window is exactly ``sum_t w_t * (sum_j S_{t,j}) / N_{g(t)}``: the loss of the
concatenated big batch. That holds for partial windows, unequal micro-batches, and losses that add
differently-normalised terms (the entity linker's char-mean start/end BCE + pair-mean matching
BCE), with no extra gradient buffer and no rescaling of ``.grad``. Under DDP the window totals
are summed over the ``W`` ranks (one all-reduce per window) and each rank divides by
``N_g / (k * W)``: DDP's gradient mean over ranks then gives the big batch of all ranks'
windows. The gradient penalty stays exact too
(:class:`kexue.training.gradient_penalty.GradientPenalty` penalises the gradient of what is
back-propagated), and so does the VQ-VAE's EMA codebook (the window's statistics are one update
per optimizer step, :class:`kexue.models.vqvae.VQVAEModule`). Still NOT exact: BatchNorm (batch statistics per micro-batch; a warning says
so), dropout masks (different random draws), FGM's perturbation (normalised per micro-batch),
data-dependent losses that couple samples (contrastive, in-batch negatives). The look-ahead holds
``k`` CPU batches in memory.

``weighting: samples`` (``trainer.accumulation_weighting``) overrides the module's groups: each
micro-batch's per-batch mean loss is weighted by its share of the window's samples.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from kexue.config import ConfigError
from kexue.training.distributed import all_reduce_sum, world_size
from kexue.training.loss import SAMPLES, count
from kexue.training.module import _batch_size

BATCHNORM_WARNING = (
    "accumulate_grad_batches={k} but the model contains BatchNorm layers ({names}): their batch "
    "statistics are computed per micro-batch, so k micro-batches of b are NOT equivalent to one "
    "batch of k*b (post 6794). Fix: use LayerNorm/GroupNorm, a larger real batch, or accept the "
    "difference."
)


def batchnorm_layers(module: nn.Module) -> list[str]:
    """Names of every BatchNorm-like submodule (``nn.modules.batchnorm._BatchNorm`` subclasses)."""
    return [name or "<root>" for name, m in module.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class AccumulationGuard(L.Callback):
    """Warn at fit start when ``accumulate_grad_batches > 1`` and the model has BatchNorm."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        k = trainer.accumulate_grad_batches
        if stage != "fit" or k <= 1:
            return
        names = batchnorm_layers(pl_module)
        if names:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            rank_zero_warn(BATCHNORM_WARNING.format(k=k, names=shown), category=UserWarning)


WEIGHTINGS = ("module", "samples")


def _epoch_limit(trainer: L.Trainer) -> float:
    """Batches Lightning will draw this epoch (``limit_train_batches`` / ``fast_dev_run`` applied)."""
    limits = getattr(getattr(trainer.fit_loop, "_combined_loader", None), "limits", None)
    if limits:
        return float(limits[0])
    return float(trainer.num_training_batches)


class AccumulationWindows:
    """The training loader, read one accumulation window ahead.

    Yields the wrapped loader's batches unchanged, in order; before yielding the first batch of a
    window it has drawn the whole window and recorded each batch's ``counts_fn(batch)`` and the
    window totals. Window ``i`` holds batches ``i*k .. i*k+k-1`` of the epoch, Lightning's rule
    (zero-grad when ``batch_idx % k == 0``; step after ``k`` batches or at the epoch's end).
    Unknown attributes (``dataset``, ``batch_size``, ``sampler`` ...) are the wrapped loader's.
    """

    def __init__(self, loader: Any, trainer: L.Trainer,
                 counts_fn: Callable[[Any], dict[str, Any]]) -> None:
        self.loader = loader
        self.trainer = trainer
        self.counts_fn = counts_fn
        self.windows: list[dict[str, float]] = []
        self.batch_counts: list[dict[str, float]] = []

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("loader", "trainer", "counts_fn"):
            raise AttributeError(name)
        return getattr(self.loader, name)

    def _counts(self, batch: Any) -> dict[str, float]:
        counts = {g: count(c) for g, c in self.counts_fn(batch).items()}
        counts.setdefault(SAMPLES, float(_batch_size(batch)))
        return counts

    def __iter__(self) -> Iterator[Any]:
        k = max(1, int(self.trainer.accumulate_grad_batches))
        limit = _epoch_limit(self.trainer)
        self.windows, self.batch_counts = [], []
        it = iter(self.loader)
        drawn = 0
        while drawn < limit:
            window = list(itertools.islice(it, int(min(k, limit - drawn)) if math.isfinite(limit)
                                           else k))
            if not window:
                return
            totals: dict[str, float] = {}
            for batch in window:
                counts = self._counts(batch)
                self.batch_counts.append(counts)
                for g, c in counts.items():
                    totals[g] = totals.get(g, 0.0) + c
            self.windows.append(totals)
            drawn += len(window)
            yield from window


class ExactAccumulation(AccumulationGuard):
    """Every optimizer step equals the step on the concatenated big batch (see the module doc).

    Added by :func:`kexue.training.trainer.build_callbacks` when ``accumulate_grad_batches > 1``
    and ``trainer.exact_accumulation: true``. Needs a module with ``loss_counts`` /
    ``loss_terms`` (any :class:`kexue.training.module.KexueModule`; one that implements only
    ``compute_loss`` is a sample mean) and the train loader passed to ``trainer.fit``.

    Args:
        weighting: ``module`` (the module's normaliser groups, exact) or ``samples`` (weight each
            micro-batch's mean loss by its sample share; exact only for sample-mean losses).

    Not covered: strategies that accumulate themselves (DeepSpeed), manual optimization and
    resuming in the middle of an epoch. DDP is covered (global window counts).
    """

    def __init__(self, weighting: str = "module") -> None:
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"Invalid parameter 'trainer.accumulation_weighting': "
                              f"{weighting!r}. Fix: use module (the loss's own normalisers, "
                              "exact) or samples (sample-share weighting).")
        self.weighting = weighting
        self._windows: AccumulationWindows | None = None
        self._original: Any = None
        self._seen = 0
        self._totals: dict[str, float] = {}
        self.last_normalizer: dict[str, float] | None = None   # for tests / debugging

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage != "fit":
            return
        if not (hasattr(pl_module, "loss_counts") and hasattr(pl_module, "training_objective")):
            raise ConfigError(
                f"trainer.exact_accumulation: {type(pl_module).__name__} does not say how its "
                "loss is normalised. Fix: subclass kexue.training.module.KexueModule (implement "
                "loss_terms + loss_counts, or compute_loss for a sample mean), or set "
                "trainer.exact_accumulation: false.")
        source = getattr(trainer.fit_loop, "_data_source", None)
        loader = getattr(source, "instance", None)
        if isinstance(loader, AccumulationWindows):
            self._windows = loader
            return
        if loader is None or isinstance(loader, (L.LightningModule, L.LightningDataModule)):
            raise ConfigError(
                "trainer.exact_accumulation reads the train loader one window ahead and needs it "
                "passed directly: trainer.fit(module, train_dataloaders=loader). Fix: pass the "
                "loader, or set trainer.exact_accumulation: false.")
        # Lightning puts its DistributedSampler only into real DataLoaders: do it here, before
        # wrapping (a no-op on one process).
        prepared = trainer._data_connector._prepare_dataloader(loader, shuffle=True,
                                                               mode=RunningStage.TRAINING)
        self._original = loader
        self._windows = source.instance = AccumulationWindows(prepared, trainer,
                                                              pl_module.loss_counts)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._original is not None and stage == "fit":
            trainer.fit_loop._data_source.instance = self._original
            self._original = None
        self._clear(pl_module)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        k = trainer.accumulate_grad_batches
        windows = self._windows
        if windows is None or batch_idx // k >= len(windows.windows):
            raise RuntimeError(f"ExactAccumulation: no look-ahead window for batch {batch_idx}; "
                               "the train loader must be the one passed to trainer.fit")
        mine = windows.batch_counts[batch_idx]
        if batch_idx % k == 0:
            self._seen = 0
            self._totals = self._global_totals(trainer, pl_module, windows.windows[batch_idx // k])
        self._seen += 1
        totals, w = self._totals, world_size(trainer)
        if self.weighting == "module":
            norm = {g: t / (k * w) for g, t in totals.items()}
        else:            # per-batch means weighted by n_j / N: N_g' = c_g * N / (k * W * n_j)
            share = totals[SAMPLES] / (k * w * max(mine[SAMPLES], 1e-12))
            norm = {g: c * share for g, c in mine.items()}
        pl_module.loss_normalizer = norm
        pl_module.expected_counts = mine
        self.last_normalizer = norm

    @staticmethod
    def _global_totals(trainer: L.Trainer, pl_module: L.LightningModule,
                       local: dict[str, float]) -> dict[str, float]:
        """The window's counts summed over all DDP ranks (every rank runs the same windows)."""
        groups = sorted(local)
        summed = all_reduce_sum([local[g] for g in groups], trainer, pl_module.device)
        return dict(zip(groups, summed, strict=True))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        self._clear(pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        check = getattr(pl_module, "raise_count_mismatch", None)
        if callable(check):              # on-device count checks of the epoch: one host sync
            check()

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        windows = self._windows
        if windows is None or not windows.windows:
            return
        idx = trainer.fit_loop.epoch_loop.batch_idx // trainer.accumulate_grad_batches
        expected = len(windows.batch_counts[idx * trainer.accumulate_grad_batches:
                                            (idx + 1) * trainer.accumulate_grad_batches])
        if self._seen != expected:
            raise RuntimeError(
                f"ExactAccumulation: the optimizer stepped after {self._seen} micro-batches but "
                f"the look-ahead window holds {expected}; the window counts would be wrong. "
                "This happens when something other than the epoch end or k batches ends a "
                "window. Fix: set trainer.exact_accumulation: false for this run.")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        self._clear(pl_module)

    @staticmethod
    def _clear(pl_module: L.LightningModule) -> None:
        if hasattr(pl_module, "loss_normalizer"):
            pl_module.loss_normalizer = None
            pl_module.expected_counts = None
