"""Nodes of ``entity_linking``: behaviour modelling, candidates, training, evaluation, submission."""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd

from kexue.config import build_config
from kexue.models.entity_linking.config import DataConfig, DecodeConfig
from kexue.models.entity_linking.evaluation import confusion_by_type, evaluate_stages, stage_table
from kexue.models.entity_linking.pruning import PruningConfig, fit_behaviour
from kexue.models.entity_linking.report import render_report
from kexue.models.entity_linking.training import (
    gold_by_text,
    load_linker,
    matcher_from_aliases,
    pruned_matcher,
    texts_of,
    train_model,
    training_configs,
)
from kexue.pipelines.entity_linking.parameters import Parameters
from kexue.training.threads import torch_threads

logger = logging.getLogger(__name__)
WHERE = "params:entity_linking"


def learn_behaviour(aliases: pd.DataFrame, texts: pd.DataFrame, mentions: pd.DataFrame,
                    pruning_params: dict[str, Any]) -> dict[str, Any]:
    """Fit dictionary pruning and candidate-id pruning on the TRAIN split only.

    Args:
        aliases: ``ccks_aliases`` (alias, subject_ids).
        texts: ``ccks_texts`` (text_id, text, split).
        mentions: ``ccks_mentions`` (text_id, mention, offset, kb_id, split).
        pruning_params: ``params:entity_linking.pruning`` (see :class:`PruningConfig`).

    Returns:
        JSON-able record: config, dropped words with their counts, candidate links.
    """
    cfg = build_config(PruningConfig, pruning_params, where=f"{WHERE}.pruning")
    gold = gold_by_text(mentions, "train")
    train = [(text, gold.get(tid, [])) for tid, text in texts_of(texts, "train")]
    record = fit_behaviour(matcher_from_aliases(aliases), train, cfg)
    logger.info("behaviour modelling on %d train texts: %d words dropped, %d names with pruned "
                "candidate ids", len(train), len(record["dropped"]), len(record["candidate_links"]))
    return record


def generate_candidates(aliases: pd.DataFrame, texts: pd.DataFrame, pruning: dict[str, Any]
                        ) -> pd.DataFrame:
    """Max-matching spans of every train/dev text, before (``raw``) and after (``pruned``) pruning.

    Returns:
        Columns ``text_id, split, stage, start, end, alias``.
    """
    raw = matcher_from_aliases(aliases)
    pruned = pruned_matcher(aliases, pruning)
    rows = []
    for tid, text, split in zip(texts["text_id"], texts["text"], texts["split"]):
        for stage, matcher in (("raw", raw), ("pruned", pruned)):
            for s in matcher.match(str(text)):
                rows.append((str(tid), str(split), stage, s.start, s.end, s.alias))
    df = pd.DataFrame(rows, columns=["text_id", "split", "stage", "start", "end", "alias"])
    return df.astype({"start": "int64", "end": "int64"})


def train_linker(entities: pd.DataFrame, aliases: pd.DataFrame, texts: pd.DataFrame,
                 mentions: pd.DataFrame, pruning: dict[str, Any], word_vectors: Any,
                 params: dict[str, Any], seed: int, checkpoints: Any = None) -> dict[str, Any]:
    """Train the joint NER + matcher model; returns the bundle for ``kexue.io.TorchDataset``.

    Args:
        word_vectors: ``entity_linking_word_vectors`` (lazy lines; read only when
            ``model.word_vectors`` is true).
        params: ``params:entity_linking`` (model, data, trainer, optimizer, adversarial, ema).
        seed: ``params:seed``.
        checkpoints: ``entity_linking_checkpoints``, used when ``trainer.resumable`` is true.
    """
    build_config(Parameters, params, where=WHERE)  # a misspelt top-level key fails here
    cfgs = training_configs(params, WHERE)
    store = checkpoints if cfgs["trainer_cfg"].resumable else None
    with torch_threads(cfgs["data_cfg"].torch_threads):
        return train_model(entities, aliases, texts, mentions, pruning, **cfgs, seed=int(seed),
                           word_vectors=word_vectors, checkpoints=store)


def evaluate_linker(bundle: dict[str, Any], entities: pd.DataFrame, aliases: pd.DataFrame,
                    texts: pd.DataFrame, mentions: pd.DataFrame, candidates: pd.DataFrame,
                    pruning: dict[str, Any], params: dict[str, Any]
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Score every stage on the dev split: raw / pruned max-matching, NER, final linking.

    Returns:
        ``(dev predictions, metrics table, confusion by entity type)``.
    """
    data_cfg = build_config(DataConfig, params.get("data"), where=f"{WHERE}.data")
    dec = build_config(DecodeConfig, params.get("decode"), where=f"{WHERE}.decode")
    dev = texts_of(texts, "dev", data_cfg.max_dev_texts)
    dev_text = dict(dev)
    gold_all = gold_by_text(mentions, "dev")
    gold = {tid: gold_all.get(tid, []) for tid in dev_text}
    cand = candidates[(candidates["split"] == "dev") & candidates["text_id"].isin(list(dev_text))]
    spans: dict[str, dict[str, list[tuple[int, int]]]] = {"raw": {}, "pruned": {}}
    for tid, stage, s, e in zip(cand["text_id"], cand["stage"], cand["start"], cand["end"]):
        spans[stage].setdefault(tid, []).append((int(s), int(e)))
    linker = load_linker(bundle, entities, pruned_matcher(aliases, pruning),
                         pruning["candidate_links"], data_cfg.eval_batch_size,
                         data_cfg.description_cache_mib)
    ids = [tid for tid, _ in dev]
    with torch_threads(data_cfg.torch_threads):
        items = linker.items([t for _, t in dev])
        ner, linked = linker.predict(items, dec.ner_threshold, dec.link_threshold)
    ner_spans = dict(zip(ids, ner))
    pred = {tid: [(r.mention, r.offset, r.kb_id) for r in res] for tid, res in zip(ids, linked)}
    results = evaluate_stages(dev_text, gold, spans["raw"], spans["pruned"], ner_spans, pred)
    for stage, r in results.items():
        logger.info("entity_linking dev %-17s P=%.4f R=%.4f F1=%.4f", stage, r.precision,
                    r.recall, r.f1)
    preds = pd.DataFrame(
        [(tid, r.mention, r.offset, r.kb_id, r.score, r.n_candidates)
         for tid, res in zip(ids, linked) for r in res],
        columns=["text_id", "mention", "offset", "kb_id", "score", "n_candidates"])
    types = dict(zip(entities["subject_id"].astype(str), entities["types"].astype(str)))
    return preds, stage_table(results), confusion_by_type(gold, pred, types)


def report_linking(metrics: pd.DataFrame, confusion: pd.DataFrame, pruning: dict[str, Any],
                   bundle: dict[str, Any], params: dict[str, Any], run_id: str) -> str:
    """Markdown report: stage metrics beside Su's anchors, pruning stats, confusion, run id."""
    return render_report(metrics, confusion, pruning, bundle.get("train_summary", {}), params, run_id)


def predict_submission(bundle: dict[str, Any], entities: pd.DataFrame, aliases: pd.DataFrame,
                       predict_texts: pd.DataFrame, pruning: dict[str, Any],
                       params: dict[str, Any]) -> str:
    """Link ``ccks_predict_texts`` and write the official JSON-lines submission.

    Returns:
        One JSON object per line: ``{"text_id", "text", "mention_data": [{"kb_id", "mention",
        "offset"}]}`` with ``offset`` as a string (official format).
    """
    data_cfg = build_config(DataConfig, params.get("data"), where=f"{WHERE}.data")
    dec = build_config(DecodeConfig, params.get("decode"), where=f"{WHERE}.decode")
    linker = load_linker(bundle, entities, pruned_matcher(aliases, pruning),
                         pruning["candidate_links"], data_cfg.eval_batch_size,
                         data_cfg.description_cache_mib)
    ids = [str(t) for t in predict_texts["text_id"]][: data_cfg.max_predict_texts]
    texts = [str(t) for t in predict_texts["text"]][: data_cfg.max_predict_texts]
    lines = []
    for b in range(0, len(texts), 1024):  # bounded memory on the 10k-text develop.json
        items = linker.items(texts[b:b + 1024])
        with torch_threads(data_cfg.torch_threads):
            _, linked = linker.predict(items, dec.ner_threshold, dec.link_threshold)
        for tid, text, res in zip(ids[b:b + 1024], texts[b:b + 1024], linked):
            mention_data = [{"kb_id": r.kb_id, "mention": r.mention, "offset": str(r.offset)}
                            for r in res]
            lines.append(json.dumps({"text_id": tid, "text": text, "mention_data": mention_data},
                                    ensure_ascii=False))
    logger.info("entity_linking: wrote %d submission lines", len(lines))
    return "\n".join(lines) + ("\n" if lines else "")
