"""The champion / challenger registry datasets on a real (sqlite) MLflow registry."""

from __future__ import annotations

import pytest
import torch
from kedro.io import DatasetError

from kexue.io import ChampionDataset, RegistryDecisionDataset


@pytest.fixture
def registry(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)             # kedro-mlflow sets a process-wide registry URI
    mlflow.set_experiment("registry-test")   # not the active experiment of an earlier session
    yield uri
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def _decision(value: float, promote: bool) -> dict:
    return {"bundle": {"w": torch.tensor([value])}, "promote": promote, "tags": {"v": value}}


def test_first_run_no_alias_then_only_a_promotion_moves_the_champion(registry):
    assert ChampionDataset(model_name="m").load()["bundle"] is None        # nothing registered
    RegistryDecisionDataset(model_name="m").save(_decision(1.0, promote=False))
    assert ChampionDataset(model_name="m").load()["version"] is None       # registered, no alias
    RegistryDecisionDataset(model_name="m").save(_decision(2.0, promote=True))
    RegistryDecisionDataset(model_name="m").save(_decision(3.0, promote=False))
    champ = ChampionDataset(model_name="m").load()
    assert champ["version"] == "2" and champ["bundle"]["w"].item() == 2.0


def test_an_unreachable_registry_stops_the_run_instead_of_promoting(monkeypatch):
    """Before: any MlflowException read as "no champion yet", so the gate promoted anything."""
    import mlflow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    mlflow.set_tracking_uri("http://127.0.0.1:9")          # nothing listens there
    mlflow.set_registry_uri("http://127.0.0.1:9")
    try:
        with pytest.raises(DatasetError, match="stops instead of promoting"):
            ChampionDataset(model_name="m").load()
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
