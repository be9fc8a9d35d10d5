"""Ingest node of ``text_classification``: the selected source -> train / dev tables + rejects +
counts (``read = accepted + rejected``), with the dev texts that also occur in train flagged."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from kexue.config import ConfigError, build_config, require_at_least
from kexue.data.rejects import empty_rejects
from kexue.data.textcls import generate_task, overlap

logger = logging.getLogger(__name__)
P = "text_classification"
# which split of each source is scored as "dev" (FewCLUE's public test set is labelled)
DEV_SPLIT = {"tnews": "dev", "iflytek": "dev", "fewclue_iflytek": "test", "chnsenticorp": "dev",
             "embedded": "dev"}


@dataclass
class DataConfig:
    """``params:text_classification.data``: ``source`` (``embedded`` = the generated task, or
    ``tnews`` / ``fewclue_iflytek`` / ``chnsenticorp`` read from ``data/01_raw``; ``iflytek``
    has no public train split here), the generated task's size, and an optional cap on the
    number of training texts (``max_train``, 0 = all; a seeded sample)."""

    source: Literal["embedded", "tnews", "iflytek", "fewclue_iflytek", "chnsenticorp"] = "embedded"
    n_train: int = 3000
    n_dev: int = 600
    n_classes: int = 5
    max_train: int = 0

    def validate(self) -> None:
        if self.source == "embedded":              # the generated task's size; unused otherwise
            require_at_least(self, 1, "n_train", "n_dev")
            require_at_least(self, 2, "n_classes")
        require_at_least(self, 0, "max_train")     # 0 = every training text


def ingest_text(tnews: Any, iflytek: Any, fewclue_iflytek: Any, chnsenticorp: Any,
                params: dict[str, Any], seed: int
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Returns ``(train, dev, rejects, report)``; ``dev`` gains ``in_train`` (its text occurs in
    train: kept, as the official dev set is, and reported)."""
    cfg = build_config(DataConfig, params.get("data"), where=f"{P}.data")
    if cfg.source == "embedded":
        try:
            splits = generate_task(cfg.n_train, cfg.n_dev, cfg.n_classes, seed=seed)
        except ValueError as exc:                  # e.g. more classes than the alphabet holds
            raise ConfigError(f"Invalid parameters under '{P}.data': {exc}. Fix: fewer "
                              "n_classes") from exc
    else:
        raw = {"tnews": tnews, "iflytek": iflytek, "fewclue_iflytek": fewclue_iflytek,
               "chnsenticorp": chnsenticorp}[cfg.source]
        if getattr(raw, "unavailable", None):
            raise ConfigError(f"{P}.data.source={cfg.source!r}: {raw.unavailable}")
        splits = raw.read()
    dev_name = DEV_SPLIT[cfg.source]
    if "train" not in splits or dev_name not in splits:
        raise ConfigError(f"{P}.data.source={cfg.source!r}: needs a train and a {dev_name} split, "
                          f"found {sorted(splits)}. Fix: add train.json to the folder, or use "
                          "fewclue_iflytek (FewCLUE's labelled train and test).")
    train, dev = splits["train"], splits[dev_name]
    ov = overlap(train, dev)
    train_frame = train.frame
    if cfg.max_train and cfg.max_train < len(train_frame):
        train_frame = train_frame.sample(n=cfg.max_train, random_state=seed).sort_index()
    dev_frame = dev.frame.assign(in_train=~ov["keep"])
    rejects = [s.rejects for s in splits.values() if len(s.rejects)]
    report = {"source": cfg.source, "train": len(train_frame), "dev": len(dev_frame),
              "dev_split": dev_name, "n_classes": len(train.labels),
              "classes": list(train.labels.names), "dev_in_train": int(ov["rows"]),
              "dev_in_train_distinct": int(ov["distinct"]),
              "splits": {k: s.report() for k, s in splits.items()}}
    logger.info("text_classification: %s: %d train / %d dev, %d classes, %d dev rows also in "
                "train, rejects %s", cfg.source, report["train"], report["dev"],
                report["n_classes"], report["dev_in_train"],
                {k: v["rejected"] for k, v in report["splits"].items()})
    return (train_frame.reset_index(drop=True), dev_frame.reset_index(drop=True),
            pd.concat(rejects, ignore_index=True) if rejects else empty_rejects(), report)
