"""Name -> factory tables for optimizers and LR schedulers, driven by :class:`OptimizerConfig`.

Schedulers are built per *optimizer step* (Lightning ``interval: "step"``), so with gradient
accumulation warm-up and decay count real updates, never micro-batches.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from kexue.config import ConfigError
from kexue.training.config import OptimizerConfig


def _adafactor(params: Iterable, lr: float, weight_decay: float, **kw: Any) -> torch.optim.Optimizer:
    from kexue.training.adafactor import AdaFactor

    return AdaFactor(params, lr=lr, weight_decay=weight_decay, **kw)


def _torch_adafactor(params: Iterable, lr: float, weight_decay: float, **kw: Any):
    return torch.optim.Adafactor(params, lr=lr, weight_decay=weight_decay, **kw)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": lambda p, lr, weight_decay, **kw: torch.optim.Adam(p, lr=lr, weight_decay=weight_decay, **kw),
    "adamw": lambda p, lr, weight_decay, **kw: torch.optim.AdamW(p, lr=lr, weight_decay=weight_decay, **kw),
    "sgd": lambda p, lr, weight_decay, **kw: torch.optim.SGD(p, lr=lr, weight_decay=weight_decay, **kw),
    "adamax": lambda p, lr, weight_decay, **kw: torch.optim.Adamax(p, lr=lr, weight_decay=weight_decay, **kw),
    "adafactor": _adafactor,              # kexue.training.AdaFactor: Su / mesh-tf semantics
    "torch_adafactor": _torch_adafactor,  # torch.optim.Adafactor (no beta1, always relative step)
}


def _constant(step: int) -> float:
    return 1.0


def _linear_warmup(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then linear decay to 0 at ``total`` steps."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def _cosine_warmup(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then half-cosine decay to 0 at ``total`` steps."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


SCHEDULERS: dict[str, Callable[..., Callable[[int], float]]] = {
    "constant": lambda warmup, total: _constant,
    "linear_warmup": lambda warmup, total: functools.partial(_linear_warmup, warmup=warmup, total=total),
    "cosine_warmup": lambda warmup, total: functools.partial(_cosine_warmup, warmup=warmup, total=total),
}


def build_optimizer(cfg: OptimizerConfig, params: Iterable) -> torch.optim.Optimizer:
    """Create the optimizer named by ``cfg.name`` over ``params``.

    Raises:
        ConfigError: ``cfg.name`` is not in :data:`OPTIMIZERS` or ``cfg.kwargs`` is rejected.
    """
    if cfg.name not in OPTIMIZERS:
        raise ConfigError(
            f"Unknown optimizer.name={cfg.name!r}. Fix: use one of {sorted(OPTIMIZERS)}."
        )
    try:
        return OPTIMIZERS[cfg.name](params, lr=cfg.lr, weight_decay=cfg.weight_decay, **cfg.kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"optimizer.kwargs {cfg.kwargs} rejected by {cfg.name!r}: {exc}. "
            "Fix: remove or rename the offending key."
        ) from exc


def build_scheduler(cfg: OptimizerConfig, optimizer: torch.optim.Optimizer, total_steps: int) -> LambdaLR:
    """Create a per-optimizer-step ``LambdaLR`` from ``cfg.scheduler``.

    Args:
        cfg: Optimizer config (``scheduler``, ``warmup_steps``).
        optimizer: The optimizer to schedule.
        total_steps: Number of optimizer updates of the run (``trainer.estimated_stepping_batches``).
    """
    if cfg.scheduler not in SCHEDULERS:
        raise ConfigError(
            f"Unknown optimizer.scheduler={cfg.scheduler!r}. Fix: use one of {sorted(SCHEDULERS)}."
        )
    fn = SCHEDULERS[cfg.scheduler](cfg.warmup_steps, max(1, int(total_steps)))
    return LambdaLR(optimizer, fn)
