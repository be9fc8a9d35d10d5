"""MLflow tracking of a real run (tricks, tiny): kedro-mlflow's run in the project's SQLite store
carries the node parameters, the Kedro run id and the git commit, per-epoch and final metrics,
and the model bundles and the report as artifacts -- checked against the files the run wrote."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from kexue.tracking import metrics_of, track_spec

TINY = {"image_ingest": {"source": "digits"},
        "tricks": {"data": {"n_train": 100, "n_test": 50},
                   "trainer": {"max_epochs": 2}}}


@pytest.mark.slow
def test_a_training_run_is_tracked_in_mlflow(kedro_project: Path, kedro_run, monkeypatch) -> None:
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=kedro_project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=kedro_project, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=kedro_project, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=kedro_project, check=True,
                         capture_output=True, text=True).stdout.strip()
    kedro_run(kedro_project, ["tricks"], runtime_params=TINY)

    uri = f"sqlite:///{kedro_project / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    mlflow.set_tracking_uri(uri)
    (run,) = mlflow.search_runs(experiment_names=["kexue"], output_format="list")
    tags, params = run.data.tags, run.data.params
    assert tags["git_commit"] == sha and tags["kedro_env"] == "local"
    report = (kedro_project / "data/08_reporting/tricks_report.md").read_text()
    assert f"`{tags['run_id']}`" in report                     # the Kedro run id
    assert params["tricks.trainer.max_epochs"] == "2" and params["seed"] == "42"
    history = [m.value for m in client.get_metric_history(run.info.run_id, "adam_bs100.val_acc")]
    epochs = pd.read_parquet(kedro_project / "data/07_model_output/tricks/adam_bs100_history.parquet")
    assert history == pytest.approx(epochs["val_acc"].tolist()) and len(history) == 2
    table = pd.read_csv(kedro_project / "data/08_reporting/tricks_metrics.csv").set_index("run")
    assert run.data.metrics["adam_bs1.test_acc"] == pytest.approx(table.loc["adam_bs1", "test_acc"])
    models = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
    assert {f"models/{r}.pt" for r in table.index} == models
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {"reports/tricks_report.md", "reports/tricks_curves.png"} <= reports


def test_metric_extraction_by_hand() -> None:
    class Dataset:
        metadata = {"kexue": {"track": "epoch_metrics", "step": "epoch", "prefix": "r"}}

    spec = track_spec(Dataset())
    frame = pd.DataFrame({"epoch": [1, 2], "val_acc": [0.5, 0.75], "run": ["r", "r"]})
    assert metrics_of(frame, spec) == [("r.val_acc", 0.5, 1), ("r.val_acc", 0.75, 2)]
    final = {"track": "metrics", "key": "stage", "columns": ["f1"]}
    table = pd.DataFrame({"stage": ["ner", "link"], "f1": [0.8, float("nan")]})
    assert metrics_of(table, final) == [("ner.f1", 0.8, None)]        # NaN is not logged
    Dataset.metadata = {"kexue": {"track": "everything"}}
    with pytest.raises(ValueError, match="kexue.track"):
        track_spec(Dataset())


@pytest.mark.slow
def test_title_and_linker_training_log_per_epoch_metrics(kedro_project: Path, kedro_run,
                                                         monkeypatch) -> None:
    """The bundles' per-epoch rows (EpochMetrics) reach MLflow with one step per epoch."""
    import mlflow
    import torch
    from mlflow import MlflowClient

    from tests.pipelines.entity_linking.test_pipeline import TINY as EL
    from tests.pipelines.title_generation.test_pipeline import TINY as TG

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tg = {**TG, "trainer": {**TG["trainer"], "max_epochs": 2}}
    el = {**EL["entity_linking"], "trainer": {**EL["entity_linking"]["trainer"], "max_epochs": 2}}
    kedro_run(kedro_project, ["corpus_ingest", "title_generation", "ccks_ingest",
                              "entity_linking"],
              runtime_params={"corpus_ingest": {"default": {"n_pairs": 80}},
                              "title_generation": tg, "ccks_default": EL["ccks_default"],
                              "entity_linking": el})
    uri = f"sqlite:///{kedro_project / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    (run,) = mlflow.search_runs(experiment_names=["kexue"], output_format="list")
    client = MlflowClient(tracking_uri=uri)
    bundle = torch.load(kedro_project / "data/06_models/title_gen_l2r_baseline.pt",
                        weights_only=True)
    rows = bundle["history"]["epochs"]
    assert [r["epoch"] for r in rows] == [1, 2]
    logged = client.get_metric_history(run.info.run_id, "l2r_baseline.train_loss")
    assert [(m.step, m.value) for m in logged] == [(r["epoch"], pytest.approx(r["train_loss"]))
                                                   for r in rows]
    linker = client.get_metric_history(run.info.run_id, "linker.train_loss")
    assert [m.step for m in linker] == [1, 2]


def test_the_gpu_env_has_its_own_mlflow_store_and_registry(monkeypatch) -> None:
    """One registry for both envs let a CPU-sized local retrain move the gpu champion."""
    from kedro.config import OmegaConfigLoader

    from kexue import settings

    monkeypatch.setattr(settings, "_USER_TRACKING_URI", None)
    root = Path(__file__).resolve().parents[1]
    uris = {}
    for env in ("local", "gpu"):
        loader = OmegaConfigLoader(str(root / "conf"), env=env, **settings.CONFIG_LOADER_ARGS)
        server = loader["mlflow"]["server"]
        assert server["mlflow_tracking_uri"] == server["mlflow_registry_uri"]
        uris[env] = server["mlflow_tracking_uri"]
        assert loader["mlflow"]["tracking"]["experiment"]["name"] == "kexue"   # soft merge
    assert uris["local"].endswith("/mlflow.db") and uris["gpu"].endswith("/mlflow-gpu.db")
    assert uris["local"] != uris["gpu"]
