"""Fitting helpers shared by the title-generation nodes (kept out of the Kedro wiring)."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from kexue.models.title_gen.batching import Collate, TitleDataset
from kexue.models.title_gen.config import Seq2SeqConfig
from kexue.models.title_gen.model import Seq2Seq
from kexue.models.title_gen.module import TitleGenModule, evaluate_ce
from kexue.training.config import AdversarialConfig, EMAConfig, OptimizerConfig, TrainerConfig
from kexue.training.history import EpochMetrics
from kexue.training.resume import ResumePlan, data_digest, fit_identity
from kexue.training.trainer import build_trainer

logger = logging.getLogger(__name__)


def make_loader(ds: TitleDataset, batch_size: int, shuffle: bool, mix_gold: float = 0.0,
                seed: int = 0, **loader_kwargs: Any) -> DataLoader:
    """DataLoader with the title collate function (seeded shuffling via the global seed);
    ``loader_kwargs``: further ``DataLoader`` arguments, e.g. ``TrainerConfig.loader_kwargs()``
    (workers, pinned memory)."""
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle,
                      collate_fn=Collate(mix_gold=mix_gold, seed=seed), **loader_kwargs)


def fit_seq2seq(model_cfg: Seq2SeqConfig, train_ds: TitleDataset, val_ds: TitleDataset, *,
                batch_size: int, trainer_cfg: TrainerConfig, optim_cfg: OptimizerConfig,
                adversarial_cfg: AdversarialConfig, ema_cfg: EMAConfig, seed: int,
                init_state: dict[str, torch.Tensor] | None = None, mix_gold: float = 0.0,
                directions: str = "both", checkpoints: Any = None
                ) -> tuple[Seq2Seq, dict[str, Any]]:
    """Seed, build, fit and return the trained :class:`Seq2Seq` (EMA weights if enabled).

    ``directions`` (``both`` | ``l2r`` | ``r2l``) selects the loss, see :class:`TitleGenModule`;
    ``l2r`` / ``r2l`` train a unidirectional baseline (encoder trained by that direction only).
    ``checkpoints`` (a :class:`kexue.io.checkpoints.CheckpointStore`): epoch checkpoints and an
    exact resume of a killed fit (``kexue.training.resume``; with ``mix_gold > 0`` the batch's
    draw is seeded from ``(seed, epoch, index)``), cleared when the fit finishes.

    Returns:
        (model on CPU in eval mode, history dict with ``train_seconds`` and the final
        validation CE per direction).
    """
    L.seed_everything(seed, workers=True, verbose=False)
    module = TitleGenModule(model_cfg, optim_cfg, directions)
    if init_state is not None:
        module.model.load_state_dict(init_state)
    plan = ResumePlan(checkpoints, len(train_ds), seed, per_item=mix_gold > 0, identity={
        **fit_identity(module, trainer_cfg, [train_ds.sources, train_ds.titles, train_ds.ctx_l2r,
                                             train_ds.ctx_r2l]),
        "model_config": dataclasses.asdict(model_cfg), "batch_size": batch_size,
        "adversarial": dataclasses.asdict(adversarial_cfg), "ema": dataclasses.asdict(ema_cfg),
        "mix_gold": mix_gold, "directions": directions,
        "init": None if init_state is None else data_digest(list(init_state.values()))})
    train_loader = DataLoader(train_ds, batch_size=batch_size,
                              collate_fn=Collate(mix_gold=mix_gold, seed=seed),
                              **trainer_cfg.loader_kwargs(), **plan.loader_kwargs(shuffle=True))
    val_loader = make_loader(val_ds, batch_size, False, **trainer_cfg.loader_kwargs())
    epochs = EpochMetrics()
    trainer = build_trainer(trainer_cfg, adversarial_cfg, ema_cfg,
                            callbacks=[epochs, *plan.callbacks], **plan.trainer_overrides)
    t0 = time.perf_counter()
    trainer.fit(module, train_loader, val_loader if len(val_ds) else None,
                ckpt_path=plan.ckpt_path)
    plan.finish()
    seconds = time.perf_counter() - t0
    if ema_cfg.decay > 0:
        from kexue.training.ema import EMA

        ema = EMA.find(trainer)
        if ema is not None:
            ema.apply_to(module)
    model = module.model.eval()
    history: dict[str, Any] = {"train_seconds": seconds, "steps": int(trainer.global_step),
                               "directions": directions, "epochs": epochs.rows}
    if len(val_ds):  # on the training device (Lightning's teardown moved the module to the CPU)
        ce = evaluate_ce(model.to(trainer.strategy.root_device), val_loader)
        history.update({f"val_{k}": v for k, v in ce.items()
                        if directions == "both" or k == f"ce_{directions}"})
    model = model.cpu()
    logger.info("fitted %s seq2seq (directions=%s) in %.1fs: %s",
                "bidirectional" if model_cfg.cross_attention else "baseline", directions, seconds,
                history)
    return model, history


def to_bundle(model: Seq2Seq, kind: str, history: dict[str, Any],
              itos: list[str] | None = None) -> dict[str, Any]:
    """Plain-dict model bundle for ``kexue.io.TorchDataset`` (loads with ``weights_only``).

    ``itos``: the char vocabulary the model was trained with (id -> char), kept with a bundle
    that outlives its run (a registered champion): char ids are frequency-ranked, so the next
    run's vocabulary numbers the chars differently.
    """
    bundle = {"kind": kind, "config": dataclasses.asdict(model.cfg),
              "state_dict": model.state_dict(), "history": dict(history)}
    if itos is not None:
        bundle["vocab"] = {"itos": list(itos)}
    return bundle


def from_bundle(bundle: dict[str, Any]) -> Seq2Seq:
    """Rebuild the model of a bundle written by :func:`to_bundle` (eval mode, CPU)."""
    model = Seq2Seq(Seq2SeqConfig(**bundle["config"]))
    model.load_state_dict(bundle["state_dict"])
    return model.eval()
