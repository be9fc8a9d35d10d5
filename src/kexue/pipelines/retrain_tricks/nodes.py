"""Nodes of ``retrain_tricks``: train a challenger, score it and the champion on the same fixed
test split, decide, and hand the decision to the registry dataset (which moves the alias)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from kexue.config import build_config
from kexue.data.images.table import to_tensors
from kexue.models.mlp.model import MLPClassifier, MLPConfig
from kexue.models.mlp.training import evaluate_classifier, fit_classifier
from kexue.ops.gate import GateConfig, gate_config, gate_decision, same_bundle
from kexue.ops.seen import fair_rows, train_keys
from kexue.training.config import OptimizerConfig, TrainerConfig

logger = logging.getLogger(__name__)
WHERE = "params:retrain_tricks"
METRICS = ("acc", "loss")


def _pixel_rows(frame: pd.DataFrame) -> list[bytes]:
    """Each image's content for :mod:`kexue.ops.seen`: its grey levels as int64 bytes."""
    cols = [c for c in frame.columns if str(c).startswith("px")]
    return [row.tobytes() for row in frame[cols].to_numpy(dtype="int64")]


@dataclass
class RetrainConfig:
    """``params:retrain_tricks``.

    Args:
        batch_size: Challenger micro-batch size.
        warm_start: Start the challenger from the champion's weights (when there is one and the
            architecture matches) instead of the seeded initialisation.
        trainer: Keys merged over ``params:tricks.trainer`` (e.g. ``{max_epochs: 5}``).
        optimizer: Keys merged over ``params:tricks.optimizer``.
        gate: :class:`kexue.ops.gate.GateConfig` (``metric``: acc | loss, ``margin``).
    """

    batch_size: int = 100
    warm_start: bool = False
    trainer: dict = field(default_factory=dict)
    optimizer: dict = field(default_factory=dict)
    gate: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be >= 1")


def _configs(data: dict[str, Any], model: dict[str, Any], trainer: dict[str, Any],
             optimizer: dict[str, Any], retrain: dict[str, Any], n_pixels: int) -> dict[str, Any]:
    cfg = build_config(RetrainConfig, retrain, where=WHERE)
    gate = gate_config(cfg.gate, f"{WHERE}.gate", METRICS)
    return {
        "retrain": cfg, "gate": gate,
        "model": build_config(MLPConfig, {**model, "in_dim": n_pixels},
                              where="params:tricks.model"),
        "trainer": build_config(TrainerConfig, {**trainer, **cfg.trainer},
                                where=f"{WHERE}.trainer"),
        "optim": build_config(OptimizerConfig, {**optimizer, **cfg.optimizer},
                              where=f"{WHERE}.optimizer"),
    }


def train_challenger(train: pd.DataFrame, test: pd.DataFrame, champion: dict[str, Any],
                     data: dict[str, Any], model: dict[str, Any], trainer: dict[str, Any],
                     optimizer: dict[str, Any], retrain: dict[str, Any], seed: int,
                     run_id: str) -> dict[str, Any]:
    """Train the challenger on the current data (warm-started from the champion if asked)."""
    c = _configs(data, model, trainer, optimizer, retrain,
                 sum(str(col).startswith("px") for col in train.columns))
    init = None
    champ = champion.get("bundle") if champion else None
    if c["retrain"].warm_start and champ is not None:
        if champ.get("config") != asdict(c["model"]):
            logger.warning("retrain_tricks: champion v%s has another architecture; not warm "
                           "starting", champion.get("version"))
        else:
            init = champ["state_dict"]
    result = fit_classifier(to_tensors(train), to_tensors(test),
                            c["model"], c["optim"], c["trainer"], c["retrain"].batch_size,
                            seed, init_state=init)
    return result.module.bundle(run_id=run_id,
                                warm_started_from=champion.get("version") if init else None,
                                optimizer_steps=result.optimizer_steps,
                                train_keys=train_keys(_pixel_rows(train)))


def _score(bundle: dict[str, Any], test: pd.DataFrame) -> dict[str, float]:
    module = MLPClassifier(MLPConfig(**bundle["config"]))
    module.model.load_state_dict(bundle["state_dict"])
    return evaluate_classifier(module, *to_tensors(test))


def evaluate_candidates(challenger: dict[str, Any], champion: dict[str, Any],
                        test: pd.DataFrame, data: dict[str, Any]) -> dict[str, Any]:
    """Challenger AND champion on the same fixed test split (``tricks_test``), less the images
    only one of them trained on (:func:`kexue.ops.seen.fair_rows`)."""
    keep, seen = fair_rows(_pixel_rows(test), champion.get("bundle"), challenger)
    test = test[keep.numpy()]
    scores: dict[str, Any] = {"n_eval": len(test), "eval_split": "test", "seen": seen,
                              "same_as_champion": same_bundle(challenger, champion.get("bundle")),
                              "challenger": _score(challenger, test),
                              "champion": None, "champion_version": champion.get("version")}
    if champion.get("bundle") is not None:
        scores["champion"] = _score(champion["bundle"], test)
    return scores


def decide_promotion(scores: dict[str, Any], challenger: dict[str, Any],
                     retrain: dict[str, Any], run_id: str
                     ) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The gate: ``(registry decision, decision record, markdown report)``."""
    gate = build_config(GateConfig, build_config(RetrainConfig, retrain, where=WHERE).gate,
                        where=f"{WHERE}.gate")
    decision, record, report = gate_decision(scores, challenger, gate, "the tricks classifier",
                                             run_id)
    logger.info("retrain_tricks gate: %s (%s)", decision["tags"]["gate_decision"],
                record["reason"])
    return decision, record, report
