"""``entity_linking``: node-level checks and a fast end-to-end run on the embedded default."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kexue.config import ConfigError
from kexue.pipelines.entity_linking.nodes import generate_candidates, learn_behaviour, train_linker
from kexue.pipelines.entity_linking.pipeline import create_pipeline

TINY = {
    "ccks_default": {"n_entities": 600, "n_train_texts": 800, "n_develop_texts": 60},
    "entity_linking": {
        "model": {"char_size": 8, "hidden_size": 4, "conv_size": 8, "dense_size": 8, "heads": 2,
                  "head_dim": 4, "max_desc_len": 16},
        "data": {"batch_size": 32, "eval_batch_size": 128, "max_train_texts": 256,
                 "max_dev_texts": 64, "max_predict_texts": 40},
        "trainer": {"max_epochs": 1, "limit_train_batches": 3},
        "adversarial": {"method": "fgm", "epsilon": 0.1},
    }
}


def _tables():
    aliases = pd.DataFrame({"alias": ["下载", "暗警", "迅雷"], "subject_ids": [["4"], ["6", "9"], ["7"]]})
    texts = pd.DataFrame({"text_id": ["1", "2", "3", "4"],
                          "text": ["暗警迅雷下载", "暗警下载", "迅雷下载", "暗警下载"],
                          "split": ["train", "train", "train", "dev"]})
    mentions = pd.DataFrame({"text_id": ["1", "1", "2", "3", "4"],
                             "mention": ["暗警", "迅雷", "暗警", "迅雷", "暗警"],
                             "offset": [0, 2, 0, 0, 0], "kb_id": ["6", "7", "6", "NIL", "6"],
                             "split": ["train"] * 4 + ["dev"]})
    return aliases, texts, mentions


def test_behaviour_uses_train_only_and_candidates_table() -> None:
    aliases, texts, mentions = _tables()
    rec = learn_behaviour(aliases, texts, mentions, {"ratio": 3.0})
    # 下载: remove 3 on train (the dev text is ignored), pred 0 -> 4/1 >= 3
    assert rec["dropped"] == {"下载": {"pred": 0, "remove": 3, "ratio": 4.0}}
    assert rec["candidate_links"] == {"暗警": ["6"]}
    cand = generate_candidates(aliases, texts, rec)
    dev = cand[cand["text_id"] == "4"]
    assert sorted(dev.loc[dev["stage"] == "raw", "alias"]) == ["下载", "暗警"]
    assert list(dev.loc[dev["stage"] == "pruned", "alias"]) == ["暗警"]
    with pytest.raises(ConfigError, match="ratoi"):
        learn_behaviour(aliases, texts, mentions, {"ratoi": 3.0})


def test_bad_model_param_fails_fast() -> None:
    aliases, texts, mentions = _tables()
    with pytest.raises(ConfigError, match="entity_linking.model"):
        train_linker(pd.DataFrame(), aliases, texts, mentions, {}, None, {"model": {"char_siz": 3}},
                     0)


def test_pipeline_nodes_have_names() -> None:
    names = {n.name for n in create_pipeline().nodes}
    assert "entity_linking_train_node" in names and len(names) == 6


@pytest.mark.slow
def test_end_to_end_tiny(kedro_project: Path, kedro_run) -> None:
    (kedro_project / "src").mkdir(exist_ok=True)  # bootstrap_project wants the source dir
    kedro_run(kedro_project, ["ccks_ingest", "entity_linking"], runtime_params=TINY)
    out = kedro_project / "data"
    metrics = pd.read_csv(out / "08_reporting" / "entity_linking_metrics.csv")
    assert list(metrics["stage"]) == ["max_match_raw", "max_match_pruned", "ner_model",
                                      "linking_final"]
    assert metrics[["precision", "recall", "f1"]].apply(lambda c: c.between(0, 1)).all().all()
    raw, pruned = metrics.iloc[0], metrics.iloc[1]
    assert raw["recall"] > 0.5 and pruned["precision"] > raw["precision"]  # pruning helps P
    assert (metrics["n_gold"] == raw["n_gold"]).all() and raw["n_gold"] > 0
    report = (out / "08_reporting" / "entity_linking_report.md").read_text(encoding="utf-8")
    assert "Kedro run id" in report and "F1≈0.78" in report
    lines = (out / "07_model_output" / "entity_linking_submission.jsonl").read_text(
        encoding="utf-8").splitlines()
    assert len(lines) == 40
    for line in lines:
        rec = json.loads(line)
        assert set(rec) == {"text_id", "text", "mention_data"}
        for md in rec["mention_data"]:
            assert set(md) == {"kb_id", "mention", "offset"} and isinstance(md["offset"], str)
            off = int(md["offset"])
            assert rec["text"][off:off + len(md["mention"])] == md["mention"]
    assert (out / "06_models" / "entity_linking_model.pt").is_file()
    pruning = json.loads((out / "04_feature" / "entity_linking_pruning.json").read_text("utf-8"))
    assert "下载" in pruning["dropped"]
