"""retrain_title_generation against a real MLflow registry: the first run promotes, a worse
challenger (lr 0) is never promoted, a warm-started challenger with lr 0 IS the champion (equal
scores: a tie keeps the champion)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import copy_project, run_session
from tests.pipelines.retrain_tricks.test_pipeline import _client
from tests.pipelines.title_generation.test_pipeline import TINY

MODEL = "kexue-title-generator"
PARAMS = {"corpus_ingest": {"default": {"n_pairs": 200}},
          "title_generation": {**TINY, "trainer": {"max_epochs": 2, "limit_val_batches": 1,
                                                   "accelerator": "cpu"}}}


@pytest.mark.slow
def test_title_generator_gate(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = copy_project(tmp_path / "project")
    decision = project / "data/08_reporting/retrain_title_generation_decision.json"
    run_session(project, ["retrain_title_generation"], runtime_params=PARAMS)
    assert json.loads(decision.read_text())["promote"] is True
    client = _client(project)
    for retrain in ({"optimizer": {"lr": 0.0}}, {"warm_start": True, "optimizer": {"lr": 0.0}}):
        run_session(project, ["retrain_title_generation"],
                    runtime_params={**PARAMS, "retrain_title_generation": retrain})
        d = json.loads(decision.read_text())
        assert d["promote"] is False and d["metric"] == "rouge_l"
        assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
        if retrain.get("warm_start"):
            assert d["challenger_score"] == d["champion_score"]       # the champion's weights
        else:
            assert d["challenger_score"] < d["champion_score"]
