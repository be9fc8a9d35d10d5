"""Build a Lightning ``Trainer`` (and its opt-in trick callbacks) from config dataclasses."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L

from kexue.training.config import AdversarialConfig, EMAConfig, TrainerConfig

logger = logging.getLogger(__name__)


def build_callbacks(
    trainer_cfg: TrainerConfig,
    adversarial: AdversarialConfig | None = None,
    ema: EMAConfig | None = None,
) -> list[L.Callback]:
    """The trick callbacks that the configs opt into (accumulation fix, FGM / GP, EMA)."""
    callbacks: list[L.Callback] = []
    # Filled in by kexue.training.callbacks (accumulation, adversarial, ema): see build_trainer.
    return callbacks


def build_trainer(
    cfg: TrainerConfig,
    adversarial: AdversarialConfig | None = None,
    ema: EMAConfig | None = None,
    callbacks: list[L.Callback] | None = None,
    **overrides: Any,
) -> L.Trainer:
    """Create a ``Trainer`` from ``cfg``; device-agnostic (``accelerator: auto``), no logger files.

    Args:
        cfg: Trainer settings.
        adversarial: FGM / gradient-penalty settings (``method: none`` adds nothing).
        ema: EMA settings (``decay: 0`` adds nothing).
        callbacks: Extra callbacks appended after the configured ones.
        **overrides: Passed to ``L.Trainer`` last (tests use ``fast_dev_run`` etc.).
    """
    all_callbacks = build_callbacks(cfg, adversarial, ema) + list(callbacks or [])
    kwargs: dict[str, Any] = dict(
        max_epochs=cfg.max_epochs,
        max_steps=cfg.max_steps,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        precision=cfg.precision,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        gradient_clip_val=cfg.gradient_clip_val,
        gradient_clip_algorithm=cfg.gradient_clip_algorithm,
        limit_train_batches=cfg.limit_train_batches,
        limit_val_batches=cfg.limit_val_batches,
        val_check_interval=cfg.val_check_interval,
        log_every_n_steps=cfg.log_every_n_steps,
        enable_progress_bar=cfg.enable_progress_bar,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        deterministic=cfg.deterministic,
        fast_dev_run=cfg.fast_dev_run,
        callbacks=all_callbacks,
    )
    kwargs.update(overrides)
    return L.Trainer(**kwargs)
