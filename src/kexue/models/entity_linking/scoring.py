"""Score a saved linker bundle on a split: final (mention, offset, kb_id) P/R/F1 (the number the
retraining gate compares for the champion and the challenger)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from kexue.models.entity_linking.config import DataConfig, DecodeConfig
from kexue.models.entity_linking.metrics import micro_prf
from kexue.models.entity_linking.training import gold_by_text, load_linker, pruned_matcher, texts_of


def score_linker(bundle: Mapping[str, Any], entities: pd.DataFrame, aliases: pd.DataFrame,
                 texts: pd.DataFrame, mentions: pd.DataFrame, pruning: Mapping[str, Any],
                 data_cfg: DataConfig, dec: DecodeConfig, split: str = "dev") -> dict[str, float]:
    """``{"precision", "recall", "f1", "n_texts"}`` of the final linking on ``split``."""
    rows = texts_of(texts, split, data_cfg.max_dev_texts)
    linker = load_linker(bundle, entities, pruned_matcher(aliases, pruning),
                         pruning["candidate_links"], data_cfg.eval_batch_size,
                         data_cfg.description_cache_mib)
    items = linker.items([t for _, t in rows])
    _, linked = linker.predict(items, dec.ner_threshold, dec.link_threshold)
    ids = [tid for tid, _ in rows]
    gold_all = gold_by_text(mentions, split)
    gold = {tid: gold_all.get(tid, []) for tid in ids}
    pred = {tid: [(r.mention, r.offset, r.kb_id) for r in res] for tid, res in zip(ids, linked)}
    final = micro_prf(pred, gold)
    return {"precision": final.precision, "recall": final.recall, "f1": final.f1,
            "n_texts": float(len(rows))}
