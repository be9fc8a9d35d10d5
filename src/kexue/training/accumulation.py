"""Exact gradient accumulation on top of Lightning's ``accumulate_grad_batches`` (post 6794).

Lightning divides every micro-batch loss by ``k = accumulate_grad_batches`` and steps after ``k``
micro-batches *and* on the last batch of an epoch. Two cases are then not equivalent to one big
batch of the concatenated samples:

* the last partial window of an epoch (``w < k`` micro-batches) is still divided by ``k``, so the
  tail is under-weighted by ``w / k`` (Lightning issue #19987);
* micro-batches of unequal size (the last one when ``drop_last=False``) get equal weight ``1/k``,
  while the big-batch mean weights each sample equally.

:class:`ExactAccumulation` fixes both with *sample-count weighting*: for a window of micro-batches
with ``n_1..n_w`` samples and mean-reduced losses ``L_i`` the optimizer sees::

    g = sum_i (n_i / N) * grad(L_i),     N = n_1 + ... + n_w

which is exactly the gradient of the mean loss over the ``N`` samples of the window (i.e. one
big batch of the concatenated micro-batches) for any model whose per-sample losses do not interact
(no BatchNorm; dropout aside). It needs no extra gradient buffer: before micro-batch ``j > 1`` of a
window it rescales the accumulated ``.grad`` by ``n_{j-1} / n_j`` (keeping ``.grad = c_j * sum
n_i grad(L_i)`` with ``c_j = 1/(k n_j)``), and in ``on_before_optimizer_step`` (AMP grads already
unscaled, clipping not yet applied) by ``k * n_w / N``. With equal sizes that is a single factor
``k / w`` on the partial window and *no* change at all (bit-identical to Lightning) on full windows.

What "sample" means is set by ``size_fn(batch) -> float`` (default: leading dimension of the first
tensor in the batch). For token-level losses averaged over tokens pass a function that counts the
non-padding tokens, then the result equals the token-mean over the window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

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


class ExactAccumulation(AccumulationGuard):
    """Re-weight accumulated gradients so each optimizer step equals the big-batch gradient.

    Added by :func:`kexue.training.trainer.build_callbacks` when ``accumulate_grad_batches > 1``
    and ``trainer.exact_accumulation: true``. Windows follow Lightning's own rule (``zero_grad``
    when ``batch_idx % k == 0``; step after ``k`` micro-batches or at the end of the epoch).

    Args:
        size_fn: Weight of a micro-batch (number of samples / tokens its mean loss averages over).
            Default: the leading dimension of the first tensor in the batch.

    Not covered: strategies that accumulate themselves (DeepSpeed), manual optimization, losses
    that are sums rather than means (then plain Lightning already needs a different fix).
    """

    def __init__(self, size_fn: Callable[[Any], float] | None = None) -> None:
        self.size_fn = size_fn or _batch_size
        self._sizes: list[float] = []
        self.last_factor: float = 1.0        # for tests / debugging: the final rescale factor

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        k = trainer.accumulate_grad_batches
        n = float(self.size_fn(batch))
        if n <= 0:
            raise ValueError(f"ExactAccumulation: size_fn returned {n} for batch {batch_idx}; "
                             "it must count the samples (or tokens) the loss averages over")
        if batch_idx % k == 0:               # Lightning zero-grads before this micro-batch
            self._sizes = [n]
            return
        prev = self._sizes[-1] if self._sizes else n
        self._sizes.append(n)
        if prev != n:                        # keep .grad = sum_i n_i grad(L_i) / (k * n_current)
            _scale_grads(pl_module, prev / n)

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if not self._sizes:
            return
        k = trainer.accumulate_grad_batches
        factor = k * self._sizes[-1] / sum(self._sizes)
        self.last_factor = factor
        self._sizes = []
        if factor != 1.0:
            _scale_grads(pl_module, factor)


@torch.no_grad()
def _scale_grads(module: nn.Module, factor: float) -> None:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    dense = [g for g in grads if not g.is_sparse]
    if dense:
        torch._foreach_mul_(dense, factor)
    for g in grads:
        if g.is_sparse:
            g.mul_(factor)
