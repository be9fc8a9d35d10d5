"""Exponential moving average (EMA) of weights as a Lightning callback.

After every optimizer step ``shadow <- decay * shadow + (1 - decay) * param`` (fp32 shadow copies,
fp64 for fp64 parameters, on the parameters' device). Validation and test run on the EMA weights
(swapped in at ``on_validation_start`` / ``on_test_start``, back at the matching ``*_end``), and a
training node exports them at the end with :meth:`EMA.apply_to` or :meth:`EMA.ema_state_dict`::

    trainer.fit(model, loaders)
    ema = EMA.find(trainer)                  # None when ema.decay == 0
    state = ema.ema_state_dict(model) if ema else model.state_dict()

Only floating-point parameters are averaged; buffers (e.g. BatchNorm running statistics) are
left as trained. The shadow is saved in Lightning checkpoints (callback ``state_dict``).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn


def _shadow_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 for half/bf16/fp32 parameters, fp64 for fp64 ones (never lose precision)."""
    return torch.promote_types(dtype, torch.float32)


class EMA(L.Callback):
    """Keep an fp32 EMA copy of the trainable parameters; evaluate with it.

    Args:
        decay: EMA decay in ``[0, 1)``; ``0.999`` averages over roughly the last 1000 updates.
        evaluate_with_ema: Swap EMA weights in for validation and test (default ``True``).
    """

    def __init__(self, decay: float = 0.999, evaluate_with_ema: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema.decay={decay}; use a value in [0, 1) (0 disables EMA)")
        self.decay = float(decay)
        self.evaluate_with_ema = evaluate_with_ema
        self.shadow: dict[str, torch.Tensor] = {}
        self.num_updates = 0
        self._last_step: int | None = None
        self._backup: dict[str, torch.Tensor] | None = None

    # -- bookkeeping ----------------------------------------------------------------------------
    @staticmethod
    def find(trainer: L.Trainer) -> EMA | None:
        """The EMA callback attached to ``trainer`` (``None`` when EMA is off)."""
        return next((cb for cb in trainer.callbacks if isinstance(cb, EMA)), None)

    @staticmethod
    def _params(module: nn.Module) -> dict[str, nn.Parameter]:
        return {n: p for n, p in module.named_parameters()
                if p.requires_grad and p.is_floating_point()}

    def _init_shadow(self, module: nn.Module) -> None:
        self.shadow = {n: p.detach().to(_shadow_dtype(p.dtype), copy=True)
                       for n, p in self._params(module).items()}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        params = self._params(pl_module)
        if set(self.shadow) != set(params):  # fresh start (a restored checkpoint keeps its shadow)
            self._init_shadow(pl_module)
        else:
            self.shadow = {n: s.to(params[n].device) for n, s in self.shadow.items()}
        self._last_step = trainer.global_step

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """One EMA update from the current parameters of ``module``."""
        params = self._params(module)
        shadow = [self.shadow[n] for n in params]
        current = [p.detach().to(self.shadow[n].dtype) for n, p in params.items()]
        torch._foreach_lerp_(shadow, current, 1.0 - self.decay)   # s + (1-d)(p - s)
        self.num_updates += 1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if trainer.global_step != self._last_step:   # an optimizer step happened in this batch
            self._last_step = trainer.global_step
            self.update(pl_module)

    # -- swapping -------------------------------------------------------------------------------
    @torch.no_grad()
    def apply_to(self, module: nn.Module) -> None:
        """Copy the EMA weights into ``module`` (in place, cast to each parameter's dtype)."""
        params = self._params(module)
        missing = sorted(set(params) - set(self.shadow))
        if missing:
            raise KeyError(f"EMA has no shadow for {missing[:5]}; was it fitted on this module?")
        for n, p in params.items():
            p.copy_(self.shadow[n])

    def ema_state_dict(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """``module.state_dict()`` with parameters replaced by their EMA (cpu, parameter dtype)."""
        state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
        for n, s in self.shadow.items():
            if n in state:
                state[n] = s.detach().cpu().to(state[n].dtype)
        return state

    def _swap_in(self, module: nn.Module) -> None:
        if not self.evaluate_with_ema or not self.shadow or self._backup is not None:
            return
        self._backup = {n: p.detach().clone() for n, p in self._params(module).items()}
        self.apply_to(module)

    @torch.no_grad()
    def _swap_out(self, module: nn.Module) -> None:
        if self._backup is None:
            return
        for n, p in self._params(module).items():
            p.copy_(self._backup[n])
        self._backup = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_in(pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_out(pl_module)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.shadow:                  # test without fit (e.g. a loaded checkpoint)
            return
        self._swap_in(pl_module)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_out(pl_module)

    # -- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "num_updates": self.num_updates,
                "shadow": {n: s.detach().cpu() for n, s in self.shadow.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.num_updates = int(state_dict.get("num_updates", 0))
        self.shadow = {n: s.clone() for n, s in state_dict.get("shadow", {}).items()}
