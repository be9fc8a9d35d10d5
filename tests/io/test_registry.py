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


def _versions(name: str) -> list[str]:
    from mlflow import MlflowClient

    return sorted(str(m.version) for m in MlflowClient().search_model_versions(f"name='{name}'"))


def test_a_retried_gate_task_registers_its_challenger_once(registry, monkeypatch):
    """An Airflow retry re-runs the gate task on the persisted challenger: before, the first try
    created version 1 and failed on the alias, and the retry created version 2 (a duplicate)."""
    from mlflow import MlflowClient

    from kexue.io.registry import DIGEST_TAG, bundle_digest

    def boom(*args, **kwargs):
        raise RuntimeError("injected: the worker died after creating the version")

    decision = _decision(1.0, promote=True)
    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", boom)
    with pytest.raises(DatasetError, match="injected"):       # Kedro wraps save errors
        RegistryDecisionDataset(model_name="m").save(decision)
    monkeypatch.undo()
    assert _versions("m") == ["1"] and ChampionDataset(model_name="m").load()["version"] is None
    RegistryDecisionDataset(model_name="m").save(_decision(1.0, promote=True))   # the retry
    assert _versions("m") == ["1"]
    assert ChampionDataset(model_name="m").load()["version"] == "1"
    tags = MlflowClient().get_model_version("m", "1").tags
    assert tags[DIGEST_TAG] == bundle_digest({"w": torch.tensor([1.0])})
    RegistryDecisionDataset(model_name="m").save(_decision(2.0, promote=False))  # new content
    assert _versions("m") == ["1", "2"]
    assert ChampionDataset(model_name="m").load()["version"] == "1"


def test_bundle_digest_follows_content_not_construction() -> None:
    from kexue.io.registry import bundle_digest

    a = {"config": {"h": 4, "d": [1, 2]}, "state_dict": {"w": torch.arange(6.0).view(2, 3)}}
    b = {"state_dict": {"w": torch.arange(6.0).view(2, 3).t().contiguous().t()},
         "config": {"d": [1, 2], "h": 4}}                     # other key order, strided copy
    assert bundle_digest(a) == bundle_digest(b)
    c = {**a, "state_dict": {"w": torch.arange(6.0).view(2, 3).clone()}}
    c["state_dict"]["w"][1, 2] = 5.0000005                    # one float off in the last bits
    assert bundle_digest(a) != bundle_digest(c)
    assert bundle_digest(a) != bundle_digest({**a, "config": {"h": 4, "d": [1, 3]}})
    assert bundle_digest({"w": torch.zeros(2)}) != bundle_digest({"w": torch.zeros(2, 1)})


def test_a_reused_version_carries_the_latest_decision(registry):
    """A bit-identical challenger (a deterministic rerun) reuses its version: before the re-tag,
    the alias could land on a version still tagged 'rejected' by an older run."""
    from mlflow import MlflowClient

    bundle = {"w": torch.tensor([4.0])}
    RegistryDecisionDataset(model_name="m").save(
        {"bundle": bundle, "promote": False, "tags": {"kedro_run_id": "A",
                                                      "gate_decision": "rejected"}})
    RegistryDecisionDataset(model_name="m").save(
        {"bundle": dict(bundle), "promote": True, "tags": {"kedro_run_id": "B",
                                                           "gate_decision": "promoted"}})
    assert _versions("m") == ["1"] and ChampionDataset(model_name="m").load()["version"] == "1"
    tags = MlflowClient().get_model_version("m", "1").tags
    assert (tags["gate_decision"], tags["kedro_run_id"], tags["kedro_run_ids"]) == (
        "promoted", "B", "A,B")


def test_bundle_digest_of_a_set_does_not_depend_on_the_hash_seed() -> None:
    import subprocess
    import sys

    code = ("from kexue.io.registry import bundle_digest; "
            "print(bundle_digest({'s': {'alpha', 'beta', 'gamma', 'delta'}}))")
    out = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout
           for seed in ("1", "2", "3")}
    assert len(out) == 1


def _save(value: float, promote: bool, before: str = "none", run: str = "r") -> None:
    RegistryDecisionDataset(model_name="m").save(
        {"bundle": {"w": torch.tensor([value])}, "promote": promote,
         "tags": {"kedro_run_id": run, "champion_version_before": before,
                  "gate_decision": "promoted" if promote else "rejected"}})


def test_a_promotion_scored_against_a_former_champion_is_refused(registry):
    """Two retrains of one family at once: both scored against 'no champion' (or v1); the
    second used to move the alias too, last writer wins, whatever its score."""
    _save(1.0, True)                                   # run A: promoted, v1
    with pytest.raises(DatasetError, match=r"champion moved during this run \(vnone .* v1 now"):
        _save(2.0, True, before="none")                # run B scored before A promoted
    assert _versions("m") == ["1"] and ChampionDataset(model_name="m").load()["version"] == "1"
    _save(2.0, True, before="1")                       # re-run against the current champion
    assert _versions("m") == ["1", "2"] and ChampionDataset(model_name="m").load()["version"] == "2"


def test_a_retried_promotion_is_a_no_op_and_a_champion_is_never_retagged_rejected(registry):
    from mlflow import MlflowClient

    _save(1.0, True, run="A")                          # promoted, v1
    _save(1.0, True, run="A")                          # the gate task retried after success
    _save(1.0, False, before="1", run="C")             # a bit-identical retrain: not promoted
    assert _versions("m") == ["1"] and ChampionDataset(model_name="m").load()["version"] == "1"
    tags = MlflowClient().get_model_version("m", "1").tags
    assert tags["gate_decision"] == "promoted" and tags["kedro_run_id"] == "A"
    assert tags["last_gate_gate_decision"] == "rejected" and tags["kedro_run_ids"] == "A,C"
