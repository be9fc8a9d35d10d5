"""Adversarial training on the token embedding as Lightning callbacks (post 7234).

Both callbacks work with any LightningModule that has a pure ``compute_loss(batch) -> (loss,
metrics)`` (see :class:`kexue.training.module.KexueModule`) and an ``nn.Embedding`` reachable by
the dotted name ``adversarial.embedding``. They run inside Lightning's automatic optimization, so
gradient accumulation, gradient clipping (applied later, on the accumulated gradient), AMP loss
scaling and LR schedules behave as usual.

* :class:`FGM` perturbs the embedding MATRIX ``E`` (Su's choice) by ``eps * g / (||g||_F + 1e-8)``
  where ``g = dL/dE`` of the current micro-batch, recomputes the loss and back-propagates it, then
  restores ``E`` bit-exactly. ``mode="su"``: the update uses the adversarial gradient only (Su's
  reference); ``mode="sum"``: clean + adversarial gradients (the common PyTorch FGM).
* :class:`~kexue.training.gradient_penalty.GradientPenalty` (its own module) adds
  ``0.5 * eps * ||dL/de||^2`` where ``e`` is the embedding OUTPUT (``[B, L, d]``), via double
  backward.

Hook sequence for one micro-batch (``k = trainer.accumulate_grad_batches``; Lightning's closure
back-propagates ``J / k`` where ``J = module.training_objective(batch)``, scaled by the AMP scaler
``S`` under ``16-mixed``; with :class:`~kexue.training.accumulation.ExactAccumulation` ``J / k``
is exactly this micro-batch's share of the big-batch loss)::

    on_train_batch_start  -> remember the batch
    training_step         -> GP : g_e = autograd.grad(J / k * S, e, create_graph) / S, the gradient
                                  of what is back-propagated; P = 0.5*eps*||g_e||^2; the module's
                                  objective term returns J + k*P (KexueModule.objective_terms)
    on_before_backward    -> FGM: move the grads accumulated so far aside (no copy: ``p.grad=None``)
                             GP (module without objective_terms only): P as above, back-propagated
                                  (scaled by S) with retain_graph
    <Lightning's backward of J/k (GP: (J + k*P)/k), times S>
    on_after_backward     -> FGM: g = grad(E) of this micro-batch; if g is missing or not finite
                             (AMP overflow) keep the clean grads (the scaler must see the inf and
                             skip the step) and stop; otherwise put the stashed grads back (su:
                             drop this micro-batch's clean grads; sum: add them); E += delta;
                             backward(J_adv / k); E <- saved copy

**Accumulation.** The gradient penalty is exact: the big-batch penalty ``0.5*eps*||dL/de||^2``
separates over samples, and the part of micro-batch ``j`` is ``0.5*eps*||d(J_j/k)/de_j||^2`` --
the penalty of what is back-propagated -- so with ExactAccumulation ``k`` micro-batches give the
big batch's penalised gradient exactly (partial windows and unequal sizes included). FGM is not:
its perturbation ``eps*g_j/||g_j||`` is normalised per micro-batch, whereas the big batch's uses
the gradient of the whole batch, which a single pass cannot know; each micro-batch's adversarial
loss is then weighted exactly like its clean loss.

**DDP.** The extra backward passes do not go through the DDP wrapper's forward, so DDP's reducer
would synchronise only part of the gradient. Both callbacks therefore take synchronisation over
(:mod:`kexue.training.distributed`): the reducer is suspended, and before each optimizer step one
flat all-reduce averages the full gradient. FGM also averages its direction ``g`` over the ranks
and the gradient penalty divides by ``W``, so ``W`` ranks x batch ``b`` give the step of one
process x batch ``W*b`` (FGM: its perturbation is normalised over the ``W`` ranks' current
micro-batches; GP: exact, with ExactAccumulation too). Tested with 2 gloo processes.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from kexue.config import ConfigError
from kexue.training.distributed import (
    average_gradients,
    steps_after_this_batch,
    suspend_grad_sync,
)


def resolve_embedding(pl_module: nn.Module, path: str,
                      key: str = "adversarial.embedding") -> nn.Embedding:
    """Return the ``nn.Embedding`` at dotted ``path`` or fail naming ``key`` and the candidates."""
    candidates = [n for n, m in pl_module.named_modules() if isinstance(m, nn.Embedding)]
    try:
        module = pl_module.get_submodule(path)
    except AttributeError:
        module = None
    if not isinstance(module, nn.Embedding):
        found = "not found" if module is None else f"is a {type(module).__name__}, not nn.Embedding"
        raise ConfigError(
            f"Invalid parameter '{key}': {path!r} {found} in {type(pl_module).__name__}. "
            f"Fix: set {key} to one of the module's nn.Embedding submodules: "
            f"{candidates or '(none: the model has no nn.Embedding)'}."
        )
    if not hasattr(pl_module, "compute_loss"):
        raise ConfigError(
            f"{type(pl_module).__name__} has no compute_loss(batch): adversarial training "
            "re-computes the loss through it. Fix: subclass kexue.training.module.KexueModule."
        )
    return module


def _objective(pl_module: nn.Module, batch: Any) -> tuple[torch.Tensor, Any]:
    """The training loss of ``batch``: ``training_objective`` (window-normalised) if defined."""
    fn = getattr(pl_module, "training_objective", None) or pl_module.compute_loss
    return fn(batch)


def _amp_scale(trainer: L.Trainer, like: torch.Tensor) -> torch.Tensor | None:
    """The GradScaler's current scale ``S`` as a 0-d fp32 tensor on ``like``'s device, or None
    without a scaler. ``scaler.scale(1)`` instead of ``get_scale()``: no ``.item()`` host sync."""
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    if scaler is None:
        return None
    return scaler.scale(torch.ones((), dtype=torch.float32, device=like.device))


def _upcast(t: torch.Tensor) -> torch.Tensor:
    """At least fp32 (half/bf16 -> fp32; fp64 stays fp64)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


class FGM(L.Callback):
    """Fast Gradient Method on the token-embedding matrix (weight space, Su's variant).

    Args:
        epsilon: Perturbation size (Frobenius norm of ``delta``); Su uses 0.5 for BERT.
        embedding: Dotted submodule name of the ``nn.Embedding`` (``adversarial.embedding``).
        mode: ``"su"`` = update from the adversarial loss only; ``"sum"`` = clean + adversarial.
    """

    def __init__(self, epsilon: float = 0.5, embedding: str = "embedding",
                 mode: str = "su") -> None:
        if mode not in ("su", "sum"):
            raise ConfigError(
                f"Invalid parameter 'adversarial.mode': {mode!r}. Fix: use su or sum.")
        self.epsilon = float(epsilon)
        self.embedding = embedding
        self.mode = mode
        self._emb: nn.Embedding | None = None
        self._batch: Any = None
        self._stash: list[tuple[torch.nn.Parameter, torch.Tensor | None]] | None = None
        self._busy = False
        self._ddp = False
        self._backup: torch.Tensor | None = None     # E during the attack (reused buffer)
        self._delta_norm: torch.Tensor | None = None

    @property
    def last_delta_norm(self) -> float:
        """``||delta||`` of the last micro-batch before the cast to ``E``'s dtype (read lazily)."""
        return 0.0 if self._delta_norm is None else float(self._delta_norm)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._emb = resolve_embedding(pl_module, self.embedding)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._backup = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._batch = batch
        self._ddp = suspend_grad_sync(trainer)

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           loss: torch.Tensor) -> None:
        if self._busy or self._batch is None:
            return
        # Move the accumulated grads aside so the clean backward writes THIS micro-batch's grads
        # into fresh tensors (exact, and no copy). su needs every parameter, sum only E.
        params = (list(pl_module.parameters()) if self.mode == "su" else [self._emb.weight])
        self._stash = [(p, p.grad) for p in params if p.requires_grad]
        for p, _ in self._stash:
            p.grad = None

    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._busy or self._stash is None:
            return
        self._attack(trainer, pl_module)
        if self._ddp and steps_after_this_batch(trainer):
            average_gradients(pl_module)

    def _attack(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        emb = self._emb
        k = trainer.accumulate_grad_batches
        g = self._direction(trainer, emb.weight.grad)
        with torch.no_grad():
            for p, old in self._stash:
                if g is not None and self.mode == "su":
                    p.grad = old                 # drop this micro-batch's clean grads
                elif old is not None:
                    p.grad = old if p.grad is None else old.add_(p.grad)   # old + clean
        self._stash = None
        if g is None:        # the loss does not reach E: keep the clean grads (plain update)
            return
        delta = self._delta(g, emb.weight.dtype)
        backup = self._backup
        if backup is None or backup.shape != emb.weight.shape or backup.dtype != emb.weight.dtype:
            backup = self._backup = torch.empty_like(emb.weight)
        self._busy = True
        try:
            with torch.no_grad():
                backup.copy_(emb.weight)
                emb.weight.add_(delta)
            del delta
            with trainer.precision_plugin.forward_context(), torch.enable_grad():
                adv_loss, _ = _objective(pl_module, self._batch)
            trainer.strategy.backward(adv_loss / k, None)
        finally:
            with torch.no_grad():
                emb.weight.copy_(backup)     # bit-exact restore
            self._busy = False

    def _direction(self, trainer: L.Trainer, clean: torch.Tensor | None) -> torch.Tensor | None:
        """``dL/dE`` of this micro-batch (unscaled, fp32+, averaged over DDP ranks) or None.

        No copy when nothing needs rescaling: the clean gradient is only read (before the
        adversarial backward writes any gradient).
        """
        if clean is None:
            return None
        g = clean.detach()
        if g.is_sparse:
            g = g.to_dense()
        k = trainer.accumulate_grad_batches
        scale = _amp_scale(trainer, g)
        g = _upcast(g)
        if scale is not None:
            g = g * (k / scale)                              # dL/dE, unnormalised
        elif k != 1:
            g = g * float(k)
        if self._ddp:                                        # one direction for all ranks
            g = trainer.strategy.reduce(g.clone(), reduce_op="mean")
        return g

    def _delta(self, g: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``eps * g / (||g|| + 1e-8)``, or 0 where ``g`` is not finite -- decided on the device.

        A non-finite direction (AMP overflow) gives ``delta = 0``: the adversarial pass then
        recomputes the clean loss, so its inf/NaN gradient reaches the GradScaler, which skips
        the step and backs the scale off (su: the clean gradient; sum: twice it). No
        ``bool(tensor)`` host sync per step.
        """
        norm = torch.linalg.vector_norm(g)
        finite = torch.isfinite(norm)                        # all of g finite (0-d, device)
        coef = torch.where(finite, self.epsilon / (norm + 1e-8), torch.zeros_like(norm))
        self._delta_norm = torch.where(finite, coef * norm, torch.zeros_like(norm))
        delta = (g * coef).nan_to_num_(0.0, 0.0, 0.0)        # inf * 0 -> 0, finite g unchanged
        return delta.to(dtype)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        self._batch = None
