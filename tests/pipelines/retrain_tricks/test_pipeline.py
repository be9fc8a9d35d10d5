"""retrain_tricks: the champion/challenger gate against a real MLflow registry (SQLite store in
a temporary copy of the project). Never worse: a worse challenger is never promoted, the first
run promotes, and a crash anywhere in a retrain leaves the champion exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import copy_project, run_session

MODEL = "kexue-tricks-classifier"
BASE = {"image_ingest": {"source": "digits"},
        "tricks": {"data": {"n_train": 250, "n_test": 200},
                   "trainer": {"max_epochs": 2}}}


def _params(**retrain) -> dict:
    return {**BASE, "retrain_tricks": retrain}


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return copy_project(tmp_path / "project")


def _client(project: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{project / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _champion(project: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """(version, state_dict) of the alias `champion`, read independently of the pipeline."""
    import mlflow

    client = _client(project)
    mv = client.get_model_version_by_alias(MODEL, "champion")
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"{mv.source}/bundle.pt",
                                               dst_path=str(project / "dl" / str(mv.version)))
    return str(mv.version), torch.load(path, weights_only=True)["state_dict"]


def _decision(project: Path) -> dict:
    return json.loads((project / "data/08_reporting/retrain_tricks_decision.json").read_text())


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_first_run_promotes_and_a_worse_challenger_never_does(project: Path) -> None:
    run_session(project, ["retrain_tricks"], runtime_params=_params())
    first = _decision(project)
    assert first["promote"] is True and first["champion_score"] is None
    assert "no champion yet" in first["reason"]
    v1, w1 = _champion(project)
    assert v1 == "1"
    # deliberately worse: lr 0 keeps the random initialisation (chance-level accuracy)
    run_session(project, ["retrain_tricks"], runtime_params=_params(optimizer={"lr": 0.0}))
    second = _decision(project)
    assert second["promote"] is False and second["challenger_score"] < second["champion_score"]
    v, w = _champion(project)
    assert v == "1" and _same(w, w1)                          # champion untouched
    rejected = _client(project).get_model_version(MODEL, "2")  # still registered, with reason
    assert rejected.tags["gate_decision"] == "rejected"
    assert rejected.tags["gate_reason"] == second["reason"]
    assert float(rejected.tags["champion_score"]) == pytest.approx(second["champion_score"])
    report = (project / "data/08_reporting/retrain_tricks_report.md").read_text()
    assert "REJECTED" in report and "champion (v1)" in report


@pytest.mark.slow
def test_margin_and_warm_start(project: Path) -> None:
    run_session(project, ["retrain_tricks"], runtime_params=_params())
    v1, w1 = _champion(project)
    # warm start from the champion with lr 0: the challenger IS the champion -> a tie -> kept
    run_session(project, ["retrain_tricks"],
                runtime_params=_params(warm_start=True, optimizer={"lr": 0.0}))
    tie = _decision(project)
    assert tie["challenger_score"] == tie["champion_score"] and tie["promote"] is False
    # a better challenger (more epochs) is refused under a margin it cannot clear ...
    better = {"trainer": {"max_epochs": 6}}
    run_session(project, ["retrain_tricks"],
                runtime_params=_params(gate={"margin": 0.5}, **better))
    refused = _decision(project)
    assert refused["challenger_score"] > refused["champion_score"]
    assert refused["promote"] is False and _champion(project)[0] == v1
    # ... and promoted without it
    run_session(project, ["retrain_tricks"], runtime_params=_params(**better))
    won = _decision(project)
    assert won["promote"] is True and won["champion_version_before"] == v1
    v, w = _champion(project)
    assert v == "4" and not _same(w, w1)


def _crash(monkeypatch, point: str) -> None:
    from kexue.io.torch_dataset import TorchDataset
    from kexue.pipelines.retrain_tricks import nodes

    def boom(*args, **kwargs):
        raise RuntimeError(f"injected crash: {point}")

    if point == "training":
        monkeypatch.setattr(nodes, "fit_classifier", boom)
    elif point == "after_training":                 # the trained challenger cannot be persisted
        original = TorchDataset.save
        monkeypatch.setattr(TorchDataset, "save", lambda self, data: boom()
                            if "challenger" in str(self._filepath) else original(self, data))
    elif point == "evaluation":                     # scoring the champion fails
        calls = {"n": 0}
        score = nodes._score

        def flaky(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 2:
                boom()
            return score(*args, **kwargs)

        monkeypatch.setattr(nodes, "_score", flaky)
    else:                                           # the registry accepts the version, alias fails
        from mlflow import MlflowClient

        monkeypatch.setattr(MlflowClient, "set_registered_model_alias", boom)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["training", "after_training", "evaluation", "alias"])
def test_a_crash_anywhere_leaves_the_champion_as_it_was(project: Path, monkeypatch,
                                                         point: str) -> None:
    run_session(project, ["retrain_tricks"], runtime_params=_params())
    v1, w1 = _champion(project)
    before = (project / "data/08_reporting/retrain_tricks_decision.json").read_text()
    _crash(monkeypatch, point)
    with pytest.raises(Exception, match="injected crash"):
        run_session(project, ["retrain_tricks"],       # a challenger that would win
                    runtime_params=_params(trainer={"max_epochs": 6}))
    monkeypatch.undo()
    v, w = _champion(project)
    assert v == v1 and _same(w, w1)
    if point != "alias":                            # the gate never ran: nothing registered
        versions = _client(project).search_model_versions(f"name='{MODEL}'")
        assert [str(m.version) for m in versions] == ["1"]
        assert (project / "data/08_reporting/retrain_tricks_decision.json").read_text() == before


def test_gate_decisions_by_hand() -> None:
    from kexue.ops.gate import GateConfig, decide

    up = GateConfig(metric="acc", margin=0.01)
    assert decide(0.90, None, up)[0] is True                  # first run
    assert decide(0.905, 0.90, up)[0] is False                # gain 0.005 <= margin
    assert decide(0.92, 0.90, up)[0] is True                  # gain 0.02 > margin
    assert decide(0.90, 0.90, GateConfig())[0] is False       # a tie keeps the champion
    assert decide(float("nan"), 0.1, GateConfig())[0] is False
    down = GateConfig(metric="loss", higher_is_better=False, margin=0.0)
    assert decide(0.30, 0.35, down)[0] is True and decide(0.36, 0.35, down)[0] is False
    inferred = GateConfig(metric="loss")                      # a cost by its name
    assert decide(0.30, 0.35, inferred)[0] is True and decide(2.0, 0.3, inferred)[0] is False
    assert GateConfig(metric="val_ce_l2r").higher is False and GateConfig(metric="rouge_l").higher
    assert decide(0.5, float("nan"), up)[0] is True           # a NaN champion is replaced


def test_a_cost_metric_marked_higher_is_better_is_refused() -> None:
    """``metric: loss`` with ``higher_is_better: true`` promoted a loss of 2.0 over 0.3."""
    from kexue.config import ConfigError, build_config
    from kexue.ops.gate import GateConfig

    with pytest.raises(ConfigError, match=r"'loss' is a cost .*Fix: drop higher_is_better"):
        build_config(GateConfig, {"metric": "loss", "higher_is_better": True}, where="gate")
    assert build_config(GateConfig, {"metric": "acc", "higher_is_better": None}).higher


def _pixels(frame) -> list[tuple]:
    return [tuple(r) for r in frame[[c for c in frame.columns if c.startswith("px")]].to_numpy()]


@pytest.mark.slow
def test_a_changed_split_does_not_score_the_champion_on_its_own_training_images(
        project: Path) -> None:
    """The seed moves the split: images the champion trained on land in today's test split.
    Both models are scored only on the test images neither or both trained on (counted here
    with plain Python sets of pixel tuples, not with the pipeline's digests)."""
    import pandas as pd

    from kexue.data.images.table import to_tensors
    from kexue.models.mlp.model import bundle_to_classifier
    from kexue.models.mlp.training import evaluate_classifier

    inputs = project / "data/05_model_input"
    run_session(project, ["retrain_tricks"], runtime_params={**_params(), "seed": 1})
    champion_train = set(_pixels(pd.read_parquet(inputs / "tricks_train.parquet")))
    v1, _ = _champion(project)
    run_session(project, ["retrain_tricks"], runtime_params={**_params(), "seed": 2})
    train, test = (pd.read_parquet(inputs / f"tricks_{s}.parquet") for s in ("train", "test"))
    challenger_train = set(_pixels(train))
    rows = _pixels(test)
    champion_only = [r in champion_train and r not in challenger_train for r in rows]
    challenger_only = [r in challenger_train and r not in champion_train for r in rows]
    seen = _decision(project)["seen"]
    assert sum(champion_only) > 0                       # the scenario happened
    assert seen["excluded_seen_by_champion_only"] == sum(champion_only)
    assert seen["excluded_seen_by_challenger_only"] == sum(challenger_only)
    fair = test[[not (a or b) for a, b in zip(champion_only, challenger_only)]]
    assert seen["n_scored"] == _decision(project)["n_eval"] == len(fair)
    assert seen["n_eval_split"] == len(test)
    # the champion's recorded score is its accuracy on exactly those images
    path = next((project / "dl" / v1).rglob("bundle.pt"))   # v1 as _champion downloaded it
    module = bundle_to_classifier(torch.load(path, weights_only=True))
    expected = evaluate_classifier(module, *to_tensors(fair))["acc"]
    assert _decision(project)["champion_score"] == pytest.approx(expected, abs=1e-12)
    report = (project / "data/08_reporting/retrain_tricks_report.md").read_text()
    assert f"Scored on {len(fair)} of the split's {len(test)} rows" in report
