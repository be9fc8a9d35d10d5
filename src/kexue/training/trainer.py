"""Build a Lightning ``Trainer`` (and its opt-in trick callbacks) from config dataclasses."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L

from kexue.config import ConfigError
from kexue.training.accumulation import AccumulationGuard, ExactAccumulation
from kexue.training.adversarial import FGM
from kexue.training.config import AdversarialConfig, EMAConfig, TrainerConfig
from kexue.training.distributed import SpawnDDPStrategy, cluster_plugins, resolve_devices
from kexue.training.ema import EMA
from kexue.training.entry_points import cached_entry_point_scan
from kexue.training.gradient_penalty import GradientPenalty

logger = logging.getLogger(__name__)


def _check(cond: bool, key: str, problem: str, fix: str) -> None:
    if not cond:
        raise ConfigError(f"Invalid parameter '{key}': {problem}. Fix: {fix}")


def validate_configs(
    trainer_cfg: TrainerConfig,
    adversarial: AdversarialConfig | None = None,
    ema: EMAConfig | None = None,
) -> None:
    """Fail fast, naming the key, on settings that cannot work (before any data is touched).

    The embedding path of ``adversarial.embedding`` needs the model and is checked by the
    callback's ``setup`` at fit start.
    """
    k = trainer_cfg.accumulate_grad_batches
    _check(isinstance(k, int) and k >= 1, "trainer.accumulate_grad_batches", f"{k!r}",
           "use an integer >= 1 (1 disables accumulation)")
    _check(trainer_cfg.accumulation_weighting in ("module", "samples"),
           "trainer.accumulation_weighting", f"{trainer_cfg.accumulation_weighting!r}",
           "use module (exact for the model's own loss normalisers) or samples")
    if adversarial is not None:
        _check(adversarial.method in ("none", "fgm", "gp"), "adversarial.method",
               f"{adversarial.method!r}", "use none, fgm or gp")
        _check(adversarial.mode in ("su", "sum"), "adversarial.mode", f"{adversarial.mode!r}",
               "use su (adversarial grad only, Su's reference) or sum (clean + adversarial)")
        if adversarial.method != "none":
            _check(adversarial.epsilon > 0, "adversarial.epsilon", f"{adversarial.epsilon!r}",
                   "use a positive number (FGM: 0.5 for BERT-size embeddings, GP: 1.0)")
            _check(bool(adversarial.embedding), "adversarial.embedding", "empty",
                   "name the dotted path of the token nn.Embedding, e.g. encoder.embedding")
    if ema is not None:
        _check(0.0 <= ema.decay < 1.0, "ema.decay", f"{ema.decay!r}",
               "use 0 (off) or a value in (0, 1), e.g. 0.999")


def build_callbacks(
    trainer_cfg: TrainerConfig,
    adversarial: AdversarialConfig | None = None,
    ema: EMAConfig | None = None,
) -> list[L.Callback]:
    """The trick callbacks that the configs opt into (accumulation fix, FGM / GP, EMA).

    Order matters and is fixed here: :class:`ExactAccumulation` first (it sets the window
    normaliser at batch start, before FGM/GP compute anything), then FGM/GP, then EMA (after
    the step).
    """
    validate_configs(trainer_cfg, adversarial, ema)
    callbacks: list[L.Callback] = []
    if trainer_cfg.accumulate_grad_batches > 1:
        # Both warn on BatchNorm; only ExactAccumulation makes windows equal the big batch.
        callbacks.append(ExactAccumulation(trainer_cfg.accumulation_weighting)
                         if trainer_cfg.exact_accumulation else AccumulationGuard())
    if adversarial is not None and adversarial.method == "fgm":
        callbacks.append(FGM(adversarial.epsilon, embedding=adversarial.embedding,
                             mode=adversarial.mode))
    elif adversarial is not None and adversarial.method == "gp":
        callbacks.append(GradientPenalty(adversarial.epsilon, embedding=adversarial.embedding))
    if ema is not None and ema.decay > 0:
        callbacks.append(EMA(ema.decay))
    if callbacks:
        logger.info("Training tricks: %s", ", ".join(type(cb).__name__ for cb in callbacks))
    return callbacks


def build_trainer(
    cfg: TrainerConfig,
    adversarial: AdversarialConfig | None = None,
    ema: EMAConfig | None = None,
    callbacks: list[L.Callback] | None = None,
    **overrides: Any,
) -> L.Trainer:
    """Create a ``Trainer`` from ``cfg``; device-agnostic (``accelerator: auto``), no logger files.

    ``strategy: ddp_spawn`` becomes :class:`kexue.training.distributed.SpawnDDPStrategy` (the
    parent gets the callbacks' state back as well as the weights); under torchrun / srun,
    ``devices`` auto / -1 / 1 becomes the launcher's ranks per node and a contradicting count a
    ConfigError (:func:`resolve_devices`).

    Args:
        cfg: Trainer settings.
        adversarial: FGM / gradient-penalty settings (``method: none`` adds nothing).
        ema: EMA settings (``decay: 0`` adds nothing).
        callbacks: Extra callbacks appended after the configured ones.
        **overrides: Passed to ``L.Trainer`` last (tests use ``fast_dev_run`` etc.).
    """
    all_callbacks = build_callbacks(cfg, adversarial, ema) + list(callbacks or [])
    devices, num_nodes = resolve_devices(cfg.devices, cfg.num_nodes)
    strategy: Any = SpawnDDPStrategy() if cfg.strategy == "ddp_spawn" else cfg.strategy
    kwargs: dict[str, Any] = dict(
        max_epochs=cfg.max_epochs,
        max_steps=cfg.max_steps,
        accelerator=cfg.accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        precision=cfg.precision,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        gradient_clip_val=cfg.gradient_clip_val,
        gradient_clip_algorithm=cfg.gradient_clip_algorithm,
        limit_train_batches=cfg.limit_train_batches,
        limit_val_batches=cfg.limit_val_batches,
        val_check_interval=cfg.val_check_interval,
        log_every_n_steps=cfg.log_every_n_steps,
        enable_progress_bar=progress_bar(cfg.enable_progress_bar),
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        deterministic=cfg.deterministic,
        fast_dev_run=cfg.fast_dev_run,
        callbacks=all_callbacks,
    )
    kwargs.update(overrides)
    plugins = cluster_plugins()
    if plugins:                                       # beside any plugins the caller passes
        given = kwargs.get("plugins") or []
        kwargs["plugins"] = [*plugins, *(given if isinstance(given, (list, tuple)) else [given])]
    with cached_entry_point_scan():  # Lightning's per-Trainer scan of every installed package
        trainer = L.Trainer(**kwargs)
    check_launcher(trainer)
    return trainer


def progress_bar(setting: Any) -> bool:
    """``auto``: a progress bar only when stderr is a terminal and ``CI`` is unset, so cron,
    Airflow and CI logs stay free of carriage-return noise; ``true`` / ``false`` force it."""
    if setting == "auto":
        from kexue.progress import on_terminal

        return on_terminal()
    return bool(setting)


def check_launcher(trainer: L.Trainer) -> None:
    """Reject a strategy whose launcher would re-run the whole command once per rank.

    Lightning resolves ``strategy: auto`` with several devices (``devices: auto`` on a multi-GPU
    host, ``devices: 2``) to ``ddp``, whose launcher starts each extra rank by re-executing
    ``sys.argv`` -- inside a Kedro node that is a second full ``kedro run`` (kedro#2049). This
    looks at what Lightning actually chose, not at the strategy string. Processes created by an
    external launcher (torchrun, SLURM) are fine: Lightning then spawns nothing.
    """
    from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

    strategy = trainer.strategy
    launcher = getattr(strategy, "launcher", None)
    env = getattr(strategy, "cluster_environment", None)
    if (isinstance(launcher, _SubprocessScriptLauncher)
            and not getattr(env, "creates_processes_externally", False)):
        raise ConfigError(
            f"Invalid parameters 'trainer.devices'/'trainer.strategy': Lightning resolved "
            f"{trainer.num_devices} devices to {type(strategy).__name__} with a launcher that "
            "re-executes the command once per rank -- inside a Kedro node that re-runs the whole "
            "`kedro run`. Fix: trainer.devices: 1, or trainer.strategy: ddp_spawn for several "
            "GPUs in one node, or launch the ranks yourself with torchrun.")
