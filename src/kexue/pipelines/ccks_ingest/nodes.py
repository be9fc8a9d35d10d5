"""Nodes of ``ccks_ingest``: CCKS2019 raw JSON lines -> validated parquet tables + rejects + report.

The three raw inputs are lazy :class:`kexue.io.LineSource` handles: either all three official files
under ``data/01_raw/ccks2019_el/`` or all three embedded defaults (one synthetic world). A mix
fails fast. Malformed records go to ``ccks_rejects``; counts are conserved and reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from kexue.config import build_config
from kexue.data.ccks.reader import Rejects, assign_split, duplicate_stats, read_kb, read_texts
from kexue.data.ccks.schemas import (
    AliasesSchema,
    EntitiesSchema,
    MentionsSchema,
    PredictTextsSchema,
    RejectsSchema,
    TextsSchema,
)
from kexue.io import LineSource

logger = logging.getLogger(__name__)
WHERE = "params:ccks_ingest"
OFFICIAL, EMBEDDED = "official", "embedded default"


@dataclass
class SplitConfig:
    """el.py's fixed split over DISTINCT texts: seeded shuffle, text group ``i`` is dev iff
    ``i % dev_every == 0`` (identical texts stay on one side)."""

    dev_every: int = 9
    seed: int = 0

    def validate(self) -> None:
        if self.dev_every < 2:
            raise ValueError(f"{WHERE}.split.dev_every={self.dev_every} must be >= 2 "
                             "(9 = dev is 1/9 of train, as in el.py)")


@dataclass
class CcksIngestConfig:
    """``params:ccks_ingest`` (see conf/base/parameters_ccks_ingest.yml for each key)."""

    split: SplitConfig = field(default_factory=SplitConfig)
    check_kb_ids: bool = True  # reject train mentions whose kb_id is neither NIL nor in kb_data
    chunk_rows: int = 20_000  # kb rows buffered as Python objects before flushing to Arrow

    def validate(self) -> None:
        if self.chunk_rows < 1:
            raise ValueError(f"{WHERE}.chunk_rows must be >= 1")


def check_sources(kb_raw: LineSource, train_raw: LineSource,
                  develop_raw: LineSource) -> dict[str, Any]:
    """Decide the data source: all official files, or all embedded defaults (never a mix).

    Args:
        kb_raw: ``kb_data`` lines.
        train_raw: ``train.json`` lines.
        develop_raw: ``develop.json`` lines.

    Returns:
        ``{"source": "official" | "embedded default", "files": {name: path}}``.

    Raises:
        ValueError: Some but not all official files are present.
    """
    sources = {"kb_data": kb_raw, "train.json": train_raw, "develop.json": develop_raw}
    official = [n for n, s in sources.items() if not s.is_default]
    if official and len(official) < len(sources):
        missing = [n for n in sources if n not in official]
        raise ValueError(
            f"Only some official CCKS2019 files were found: {official} present "
            f"({', '.join(sources[n].path for n in official)}), {missing} missing. Mixing real "
            "and synthetic (embedded default) data is wrong. Fix: put all of kb_data, train.json "
            "and develop.json in data/01_raw/ccks2019_el/, or remove them all to use the "
            "embedded default.")
    source = OFFICIAL if official else EMBEDDED
    files = {n: s.path for n, s in sources.items()}
    logger.info("ccks_ingest: using the %s CCKS2019 data (%s)", source, files)
    return {"source": source, "files": files}


def ingest_kb(kb_raw: LineSource, sources: dict[str, Any],
              params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, frozenset[str],
                                               pd.DataFrame, dict[str, Any]]:
    """Stream ``kb_data`` into ``ccks_entities`` and ``ccks_aliases`` (el.py preprocessing).

    Args:
        kb_raw: ``kb_data`` lines.
        sources: Output of :func:`check_sources` (runs first).
        params: ``params:ccks_ingest``.

    Returns:
        entities, aliases, accepted subject ids, kb rejects, kb stats.
    """
    cfg = build_config(CcksIngestConfig, params, where=WHERE)
    rejects = Rejects()
    kb = read_kb(kb_raw, rejects, path=sources["files"]["kb_data"], chunk=cfg.chunk_rows)
    stats = kb.stats.to_dict()
    stats.update(n_aliases=len(kb.aliases),
                 n_ambiguous_aliases=int(kb.aliases["subject_ids"].map(len).gt(1).sum()))
    logger.info("kb_data: %s", stats)
    return (EntitiesSchema.validate(kb.entities), AliasesSchema.validate(kb.aliases),
            kb.subject_ids, rejects.to_frame(), stats)


def ingest_train(train_raw: LineSource, kb_ids: frozenset[str], sources: dict[str, Any],
                 params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                                  dict[str, Any]]:
    """Parse ``train.json`` into ``ccks_texts``/``ccks_mentions`` with the fixed train/dev split.

    Args:
        train_raw: ``train.json`` lines.
        kb_ids: Accepted ``subject_id`` set from :func:`ingest_kb`.
        sources: Output of :func:`check_sources`.
        params: ``params:ccks_ingest``.

    Returns:
        texts, mentions, train rejects, train stats.
    """
    cfg = build_config(CcksIngestConfig, params, where=WHERE)
    rejects = Rejects()
    res = read_texts(train_raw, rejects, "train.json", path=sources["files"]["train.json"],
                     labelled=True, kb_ids=kb_ids if cfg.check_kb_ids else None)
    texts = res.texts
    texts.insert(2, "split", assign_split(texts["text_id"], cfg.split.dev_every, cfg.split.seed,
                                          texts=texts["text"]))
    mentions = res.mentions
    mentions["split"] = mentions["text_id"].map(dict(zip(texts["text_id"], texts["split"],
                                                         strict=True))).astype("str")
    stats = res.stats.to_dict()
    stats.update(nil_mentions=int((mentions["kb_id"] == "NIL").sum()),
                 texts_per_split=texts["split"].value_counts().to_dict(),
                 duplicates=duplicate_stats(texts["text"], texts["split"]))
    if stats["duplicates"]["cross_split_texts"]:
        raise AssertionError(f"train/dev leak: {stats['duplicates']}")
    logger.info("train.json: %s", stats)
    return (TextsSchema.validate(texts), MentionsSchema.validate(mentions),
            rejects.to_frame(), stats)


def ingest_develop(develop_raw: LineSource,
                   sources: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Parse ``develop.json`` (``text_id`` + ``text``) into ``ccks_predict_texts``.

    Args:
        develop_raw: ``develop.json`` lines.
        sources: Output of :func:`check_sources`.

    Returns:
        predict texts, develop rejects, develop stats.
    """
    rejects = Rejects()
    res = read_texts(develop_raw, rejects, "develop.json",
                     path=sources["files"]["develop.json"], labelled=False)
    logger.info("develop.json: %s", res.stats.to_dict())
    predict = res.texts[["text_id", "text"]].reset_index(drop=True)
    return PredictTextsSchema.validate(predict), rejects.to_frame(), res.stats.to_dict()


def report_ccks_ingest(sources: dict[str, Any], kb_stats: dict[str, Any],
                       train_stats: dict[str, Any], develop_stats: dict[str, Any],
                       kb_rejects: pd.DataFrame, train_rejects: pd.DataFrame,
                       develop_rejects: pd.DataFrame, params: dict[str, Any]
                       ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Merge the rejects and write the ingestion report (also logged).

    Args:
        sources: Output of :func:`check_sources`.
        kb_stats: Counts of ``kb_data``.
        train_stats: Counts of ``train.json``.
        develop_stats: Counts of ``develop.json``.
        kb_rejects: Rejects of ``kb_data``.
        train_rejects: Rejects of ``train.json``.
        develop_rejects: Rejects of ``develop.json``.
        params: ``params:ccks_ingest``.

    Returns:
        ``ccks_rejects`` and the ``ccks_ingest_report`` dict.
    """
    cfg = build_config(CcksIngestConfig, params, where=WHERE)
    rejects = pd.concat([kb_rejects, train_rejects, develop_rejects], ignore_index=True)
    rejects = RejectsSchema.validate(rejects.astype({"line": "int64"}))
    files = {"kb_data": kb_stats, "train.json": train_stats, "develop.json": develop_stats}
    for name, st in files.items():
        if st["read"] != st["accepted"] + st["rejected"]:
            raise AssertionError(f"{name}: read != accepted + rejected: {st}")
    n_record_rejects = int((rejects["level"] == "record").sum())
    if n_record_rejects != sum(st["rejected"] for st in files.values()):
        raise AssertionError("rejects table and per-file counts disagree")
    report = {
        "source": sources["source"],
        "files": files,
        "totals": {k: sum(st[k] for st in files.values())
                   for k in ("read", "accepted", "rejected")},
        "rejects_rows": len(rejects),
        "n_entities": kb_stats["accepted"],
        "n_aliases": kb_stats["n_aliases"],
        "n_ambiguous_aliases": kb_stats["n_ambiguous_aliases"],
        "n_texts": train_stats["texts_per_split"],
        "n_mentions": train_stats.get("mentions_accepted", 0),
        "n_nil_mentions": train_stats["nil_mentions"],
        "n_predict_texts": develop_stats["accepted"],
        # exact duplicate train texts; cross_split_texts (train and dev) is 0 by construction
        "duplicates": train_stats["duplicates"],
        "split": {"dev_every": cfg.split.dev_every, "seed": cfg.split.seed,
                  "check_kb_ids": cfg.check_kb_ids},
    }
    logger.info("ccks_ingest report: source=%s totals=%s rejects=%d", report["source"],
                report["totals"], len(rejects))
    return rejects, report
