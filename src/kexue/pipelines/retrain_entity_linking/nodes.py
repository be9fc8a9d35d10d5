"""Nodes of ``retrain_entity_linking``: challenger, both scored on the fixed dev split, gate."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kexue.config import ConfigError, build_config
from kexue.models.entity_linking.config import DataConfig, DecodeConfig
from kexue.models.entity_linking.scoring import score_linker
from kexue.models.entity_linking.training import texts_of, train_model, training_configs
from kexue.ops.gate import gate_config, gate_decision, same_bundle
from kexue.ops.seen import KEYS, fair_rows, train_keys
from kexue.training.threads import torch_threads

logger = logging.getLogger(__name__)
WHERE = "params:retrain_entity_linking"
EL = "params:entity_linking"


@dataclass
class RetrainConfig:
    """``params:retrain_entity_linking``: ``trainer`` / ``optimizer`` keys merged over
    ``params:entity_linking``'s, the ``gate`` (metric ``f1`` | ``precision`` | ``recall``).
    ``warm_start`` is refused: the char vocabulary is rebuilt from the current data."""

    warm_start: bool = False
    trainer: dict = field(default_factory=dict)
    optimizer: dict = field(default_factory=dict)
    gate: dict = field(default_factory=lambda: {"metric": "f1"})


METRICS = ("f1", "precision", "recall")


def _cfg(retrain: dict[str, Any]) -> RetrainConfig:
    cfg = build_config(RetrainConfig, retrain, where=WHERE)
    gate_config(cfg.gate, f"{WHERE}.gate", METRICS)  # before training, not after it
    if cfg.warm_start:
        raise ConfigError(f"Invalid parameter '{WHERE}.warm_start': true is not supported for the "
                          "entity linker (its char vocabulary is rebuilt from the current data, so "
                          "the champion's embedding rows do not line up). Fix: set it to false.")
    return cfg


def train_challenger(entities: pd.DataFrame, aliases: pd.DataFrame, texts: pd.DataFrame,
                     mentions: pd.DataFrame, pruning: dict[str, Any], word_vectors: Any,
                     el: dict[str, Any], retrain: dict[str, Any], seed: int) -> dict[str, Any]:
    """Train a challenger linker on the current train split (``params:entity_linking``)."""
    cfg = _cfg(retrain)
    cfgs = training_configs(el, EL, trainer=cfg.trainer, optimizer=cfg.optimizer)
    with torch_threads(cfgs["data_cfg"].torch_threads):
        bundle = train_model(entities, aliases, texts, mentions, pruning, **cfgs, seed=int(seed),
                             word_vectors=word_vectors)
    used = texts_of(texts, "train", cfgs["data_cfg"].max_train_texts)
    return {**bundle, KEYS: train_keys(text for _, text in used)}


def _fair_texts(texts: pd.DataFrame, data_cfg: DataConfig, champion: dict[str, Any] | None,
                challenger: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``texts`` less the dev texts (of the first ``max_dev_texts``) only one of the two
    models trained on (:func:`kexue.ops.seen.fair_rows`), and the accounting."""
    keep, seen = fair_rows([t for _, t in texts_of(texts, "dev", data_cfg.max_dev_texts)],
                           champion, challenger)
    dev_pos = np.flatnonzero((texts["split"] == "dev").to_numpy())
    drop = np.zeros(len(texts), dtype=bool)
    drop[dev_pos[len(keep):]] = True            # beyond max_dev_texts: scored by neither
    drop[dev_pos[:len(keep)][~keep.numpy()]] = True
    return texts[~drop], seen


def evaluate_candidates(challenger: dict[str, Any], champion: dict[str, Any],
                        entities: pd.DataFrame, aliases: pd.DataFrame, texts: pd.DataFrame,
                        mentions: pd.DataFrame, pruning: dict[str, Any],
                        el: dict[str, Any]) -> dict[str, Any]:
    """Final linking P/R/F1 of challenger AND champion on the same fixed dev split, less the
    texts only one of them trained on."""
    data_cfg = build_config(DataConfig, el.get("data"), where=f"{EL}.data")
    dec = build_config(DecodeConfig, el.get("decode"), where=f"{EL}.decode")
    texts, seen = _fair_texts(texts, data_cfg, champion.get("bundle"), challenger)
    with torch_threads(data_cfg.torch_threads):
        ch = score_linker(challenger, entities, aliases, texts, mentions, pruning, data_cfg, dec)
        cp = (None if champion.get("bundle") is None else
              score_linker(champion["bundle"], entities, aliases, texts, mentions, pruning,
                           data_cfg, dec))
    return {"n_eval": int(ch.pop("n_texts")), "eval_split": "dev", "seen": seen, "challenger": ch,
            "same_as_champion": same_bundle(challenger, champion.get("bundle")),
            "champion": cp and {k: v for k, v in cp.items() if k != "n_texts"},
            "champion_version": champion.get("version")}


def decide_promotion(scores: dict[str, Any], challenger: dict[str, Any],
                     retrain: dict[str, Any], run_id: str
                     ) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The gate (see :func:`kexue.ops.gate.gate_decision`)."""
    gate = gate_config(_cfg(retrain).gate, f"{WHERE}.gate", METRICS)
    decision, record, report = gate_decision(scores, challenger, gate, "the entity linker",
                                             run_id)
    logger.info("retrain_entity_linking gate: %s (%s)", decision["tags"]["gate_decision"],
                record["reason"])
    return decision, record, report
