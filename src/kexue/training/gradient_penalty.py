"""Gradient penalty on the token-embedding output as a Lightning callback (post 7234).

See :mod:`kexue.training.adversarial` for the hook sequence, accumulation and DDP notes shared
with FGM; the callback is built by :func:`kexue.training.trainer.build_callbacks` for
``adversarial.method: gp``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from kexue.training.adversarial import _amp_scale, _upcast, resolve_embedding
from kexue.training.distributed import (
    average_gradients,
    steps_after_this_batch,
    suspend_grad_sync,
    world_size,
)


class GradientPenalty(L.Callback):
    """Gradient penalty ``0.5 * eps * ||dL/de||^2`` on the embedding output ``e`` (post 7234).

    ``L`` is the mean loss of the (big) batch, as in Su's ``loss + 0.5*eps*gp``. The penalty is
    taken on the gradient of what Lightning back-propagates for this micro-batch (``J * S / k``,
    so ``g = grad / S``): without accumulation that is Su's penalty; with ``k``-fold
    ExactAccumulation the micro-batch penalties add up to exactly the big batch's (``dL/de``
    separates over samples, so ``||dL/de||^2`` is a sum of per-micro-batch parts; see the module
    docstring). Plain Lightning accumulation gives the same for equal micro-batches in full
    windows. The output ``e`` is captured by a forward hook during the training forward and the
    gradient is taken with ``create_graph=True``; several calls of the embedding in one forward
    are all penalised.

    **One backward.** With a :class:`~kexue.training.module.KexueModule` the penalty is one of
    its ``objective_terms``: ``training_step`` returns ``J + k * P`` and Lightning's single
    backward of ``(J + k*P) / k * S`` gives the clean and the penalty gradient together (the
    floor: forward, the create-graph backward to ``e``, one backward of the sum). Any other
    module (or one whose ``training_step`` skips the terms) gets the penalty back-propagated
    separately in ``on_before_backward`` (``retain_graph=True``, then Lightning's clean backward):
    the same gradient, one more pass through the network.

    The model must be twice differentiable. Fused attention kernels are not (torch 2.13 on CPU:
    "derivative for aten::_scaled_dot_product_flash_attention_for_cpu_backward is not
    implemented"), so by default the training forward runs under
    ``sdpa_kernel(SDPBackend.MATH)`` (same result, composed of differentiable ops, slower).

    Args:
        epsilon: Penalty weight (Su: 1.0).
        embedding: Dotted submodule name of the ``nn.Embedding`` (``adversarial.embedding``).
        math_attention: Force the math SDPA backend during training forwards (see above).
    """

    def __init__(self, epsilon: float = 1.0, embedding: str = "embedding",
                 math_attention: bool = True) -> None:
        self.epsilon = float(epsilon)
        self.embedding = embedding
        self.math_attention = math_attention
        self._sdpa_ctx: Any = None
        self._handle: Any = None
        self._terms: list[Any] | None = None  # the module's objective_terms, while registered
        self._outputs: list[torch.Tensor] = []
        self._capture = False
        self._applied = False                # this micro-batch's penalty is in the loss already
        self._busy = self._ddp = False
        self._last_penalty: torch.Tensor | None = None
        self._trainer: L.Trainer | None = None

    @property
    def last_penalty(self) -> float:
        """``0.5*eps*||dL/de||^2`` of the last micro-batch (kept on the device until read)."""
        return 0.0 if self._last_penalty is None else float(self._last_penalty)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        emb = resolve_embedding(pl_module, self.embedding)
        if self._handle is not None:
            self._handle.remove()
        self._handle = emb.register_forward_hook(self._hook)
        self._trainer = trainer
        terms = getattr(pl_module, "objective_terms", None)
        if isinstance(terms, list) and self._term not in terms:
            terms.append(self._term)
            self._terms = terms

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self._terms is not None:
            self._terms.remove(self._term)
            self._terms = None
        self._trainer = None

    def _hook(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor | None:
        if not (self._capture and torch.is_grad_enabled()):
            return None
        replaced = None
        if not output.requires_grad:         # frozen embedding: still penalise dL/de
            output = replaced = output.detach().requires_grad_(True)
        self._outputs.append(output)
        return replaced

    def _enter_math_attention(self) -> None:
        if self.math_attention and self._sdpa_ctx is None:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            self._sdpa_ctx = sdpa_kernel(SDPBackend.MATH)
            self._sdpa_ctx.__enter__()

    def _exit_math_attention(self) -> None:
        if self._sdpa_ctx is not None:
            ctx, self._sdpa_ctx = self._sdpa_ctx, None
            ctx.__exit__(None, None, None)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._outputs = []
        self._capture = True
        self._applied = False
        self._ddp = suspend_grad_sync(trainer)
        self._enter_math_attention()

    def _penalty(self, trainer: L.Trainer, root: torch.Tensor,
                 scale: torch.Tensor | None) -> torch.Tensor | None:
        """``0.5*eps*||g||^2 / W`` with ``g = d root / de / S`` (``root`` = ``J / k * S``,
        ``scale`` = ``S`` from :func:`_amp_scale`, None without a GradScaler)."""
        outputs, self._outputs = self._outputs, []
        grads = torch.autograd.grad(root, outputs, create_graph=True, allow_unused=True)
        parts = [((_upcast(g) / scale if scale is not None else _upcast(g)) ** 2).sum()
                 for g in grads if g is not None]
        if not parts:
            return None
        # Under DDP the effective loss is the mean over W ranks, whose gradient at e is g / W:
        # penalise that (W * 0.5*eps*||g/W||^2 back-propagated here, averaged by W below).
        penalty = 0.5 * self.epsilon * sum(parts) / world_size(trainer)
        self._last_penalty = penalty.detach()
        return penalty

    def _term(self, batch: Any, loss: torch.Tensor) -> torch.Tensor | None:
        """The module's objective term: ``k * P`` (``training_step`` returns ``J + k * P``)."""
        trainer = self._trainer
        if trainer is None or not self._capture or not self._outputs or not loss.requires_grad:
            return None
        self._capture = False
        k = trainer.accumulate_grad_batches
        root = loss / k                      # exactly what Lightning will back-propagate ...
        scale = _amp_scale(trainer, loss)
        if scale is not None:
            root = root * scale              # ... times the AMP scale (= scaler.scale(root))
        penalty = self._penalty(trainer, root, scale)
        if penalty is None:
            return None
        self._applied = True
        return penalty * k if k != 1 else penalty

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           loss: torch.Tensor) -> None:
        self._capture = False
        if not self._busy:
            self._exit_math_attention()      # the forward is done
        if self._applied:                    # one backward of J + k*P follows
            self._applied = False
            return
        if self._busy or not self._outputs or not loss.requires_grad:
            return
        penalty = self._penalty(trainer, loss, _amp_scale(trainer, loss))  # loss: (J / k) * S
        if penalty is None:
            return
        self._busy = True
        try:
            trainer.strategy.backward(penalty, None, retain_graph=True)
        finally:
            self._busy = False

    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._busy and self._ddp and steps_after_this_batch(trainer):
            average_gradients(pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        self._outputs = []
        self._capture = False
        self._applied = False
        self._exit_math_attention()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        self._exit_math_attention()
