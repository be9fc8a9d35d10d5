"""retrain_entity_linking against a real MLflow registry: the first run promotes, a deliberately
worse challenger (lr 0: the untrained model) is registered with the reason but never promoted,
warm start is refused with the key and the fix. (The crash matrix of the shared gate and registry
datasets is in tests/pipelines/retrain_tricks.)"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kexue.config import ConfigError
from tests.conftest import copy_project, run_session
from tests.pipelines.entity_linking.test_pipeline import TINY
from tests.pipelines.retrain_tricks.test_pipeline import _client

MODEL = "kexue-entity-linker"
EL = {**TINY["entity_linking"],
      "model": {**TINY["entity_linking"]["model"], "char_size": 16, "hidden_size": 8},
      "data": {**TINY["entity_linking"]["data"], "max_train_texts": 1200},
      "trainer": {"max_epochs": 4}, "adversarial": {"method": "none"}}
PARAMS = {"ccks_default": {"n_entities": 600, "n_train_texts": 1200, "n_develop_texts": 60},
          "entity_linking": EL}


@pytest.mark.slow
def test_entity_linker_gate(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = copy_project(tmp_path / "project")
    decision = project / "data/08_reporting/retrain_entity_linking_decision.json"
    run_session(project, ["retrain_entity_linking"], runtime_params=PARAMS)
    first = json.loads(decision.read_text())
    assert first["promote"] is True and first["eval_split"] == "dev" and first["n_eval"] == 64
    client = _client(project)
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    worse = {**PARAMS, "retrain_entity_linking": {"optimizer": {"lr": 0.0}}}
    run_session(project, ["retrain_entity_linking"], runtime_params=worse)
    second = json.loads(decision.read_text())
    assert second["challenger_score"] < second["champion_score"] and second["promote"] is False
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    assert client.get_model_version(MODEL, "2").tags["gate_decision"] == "rejected"
    with pytest.raises(ConfigError, match="retrain_entity_linking.warm_start"):
        run_session(project, ["retrain_entity_linking"],
                    runtime_params={**PARAMS, "retrain_entity_linking": {"warm_start": True}})
    # another split seed: dev texts the champion trained on are left out of both scores
    # (counted here with plain sets of texts; max_train_texts 1200, max_dev_texts 64)
    texts = project / "data/02_intermediate/ccks_texts.parquet"

    def split_texts(split: str, n: int) -> list[str]:
        t = pd.read_parquet(texts)
        return t.loc[t["split"] == split, "text"].head(n).tolist()

    champion_train = set(split_texts("train", 1200))
    run_session(project, ["retrain_entity_linking"],
                runtime_params={**PARAMS, "ccks_ingest": {"split": {"seed": 1}}})
    moved = json.loads(decision.read_text())
    dev, challenger_train = split_texts("dev", 64), set(split_texts("train", 1200))
    champion_only = sum(t in champion_train and t not in challenger_train for t in dev)
    challenger_only = sum(t in challenger_train and t not in champion_train for t in dev)
    assert champion_only > 0 and moved["champion_version_before"] == "1"
    assert moved["seen"] == {"n_eval_split": 64, "n_scored": 64 - champion_only - challenger_only,
                             "excluded_seen_by_champion_only": champion_only,
                             "excluded_seen_by_challenger_only": challenger_only,
                             "champion_train_keys": "recorded"}
    assert moved["n_eval"] == moved["seen"]["n_scored"]
