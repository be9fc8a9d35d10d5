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
* :class:`GradientPenalty` adds ``0.5 * eps * ||dL/de||^2`` where ``e`` is the embedding OUTPUT
  (``[B, L, d]``), via double backward.

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
    world_size,
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

    def _penalty(self, trainer: L.Trainer, root: torch.Tensor) -> torch.Tensor | None:
        """``0.5*eps*||g||^2 / W`` with ``g = d root / de / S`` (``root`` = ``J / k * S``)."""
        outputs, self._outputs = self._outputs, []
        grads = torch.autograd.grad(root, outputs, create_graph=True, allow_unused=True)
        scale = _amp_scale(trainer, root)
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
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if scaler is not None:
            root = scaler.scale(root)        # ... times the AMP scale
        penalty = self._penalty(trainer, root)
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
        penalty = self._penalty(trainer, loss)   # loss here is (J / k) * S
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
