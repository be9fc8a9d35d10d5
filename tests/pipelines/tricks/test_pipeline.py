"""End-to-end ``tricks`` run in a temporary copy of the project (tiny sizes)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from kexue.pipelines.tricks.pipeline import RUNS

TINY = {"tricks": {"data": {"n_train": 100, "n_test": 50},
                   "trainer": {"max_epochs": 1, "accelerator": "cpu"}}}


@pytest.mark.slow
def test_tricks_pipeline_end_to_end(kedro_project, kedro_run):
    kedro_run(kedro_project, ["image_ingest", "tricks"], runtime_params=TINY)
    data = kedro_project / "data"
    metrics = pd.read_csv(data / "08_reporting/tricks_metrics.csv")
    assert sorted(metrics["run"]) == sorted(RUNS)
    assert metrics["test_acc"].between(0, 1).all() and metrics["best_val_acc"].between(0, 1).all()
    by_run = metrics.set_index("run")
    assert by_run.loc["adam_bs1", "optimizer_steps"] == 100
    assert by_run.loc["adam_bs1_accum100", "optimizer_steps"] == 1
    assert by_run.loc["adam_bs1_accum100", "effective_batch"] == 100
    assert set(by_run["optimizer"]) == {"adam", "adafactor"}
    assert (data / "08_reporting/tricks_curves.png").stat().st_size > 10_000
    report = (data / "08_reporting/tricks_report.md").read_text()
    assert "Kedro run `" in report and "## Verdict" in report
    assert ("Ingest (image_ingest): `<embedded:mnist>`: read 5000, accepted 5000, rejected 0."
            in report)
    ingest = json.loads((data / "08_reporting/image_ingest_report.json").read_text())
    assert {k: ingest[k] for k in ("files", "source", "read", "accepted", "rejected",
                                   "by_reason", "splits")} == {
        "files": ["<embedded:mnist>"], "source": "mnist", "read": 5000, "accepted": 5000,
        "rejected": 0, "by_reason": {}, "splits": {"train": 3500, "val": 500, "test": 1000}}
    rejects = pd.read_parquet(data / "02_intermediate/image_rejects.parquet")
    assert rejects.empty and list(rejects.columns) == ["file", "line", "level", "reason", "detail",
                                                          "record"]
    train = pd.read_parquet(data / "05_model_input/tricks_train.parquet")
    test = pd.read_parquet(data / "05_model_input/tricks_test.parquet")
    assert (len(train), len(test)) == (100, 50)
    assert train["label"].value_counts().tolist() == [10] * 10     # stratified over sorted rows
    history = pd.read_parquet(data / "07_model_output/tricks_history.parquet")
    assert len(history) == len(RUNS)                                # 1 epoch per run
    for run in RUNS:
        bundle = torch.load(data / f"06_models/tricks/{run}.pt", weights_only=True)
        assert bundle["run"] == run and "net.0.weight" in bundle["state_dict"]
