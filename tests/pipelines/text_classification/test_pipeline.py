"""`kedro run --pipelines text_classification` end to end in a temporary project (tiny sizes),
and the real TNEWS files through the same pipeline (behind a skip)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.pipelines.text_classification.test_nodes import PARAMS

REAL = Path(__file__).resolve().parents[3].parent / "shared" / "real-data" / "clue_tnews"
TINY = {"text_classification": {**PARAMS, "methods": {
    **PARAMS["methods"], "fgm_sum": {"adversarial": {"method": "fgm", "mode": "sum"}}}}}


@pytest.mark.slow
def test_text_classification_end_to_end(kedro_project, kedro_run):
    kedro_run(kedro_project, ["text_classification"], runtime_params=TINY)
    out = kedro_project / "data" / "08_reporting"
    metrics = pd.read_csv(out / "textcls_metrics.csv").set_index("method")
    assert sorted(metrics.index) == ["fgm_su", "fgm_sum", "gp", "plain"]
    assert (metrics["seeds"] == 2).all() and metrics.loc["plain", "dev_acc_diff"] == 0
    seeds = pd.read_csv(out / "textcls_seeds.csv")
    assert len(seeds) == 8 and seeds["probe_norm"].round(6).eq(0.5).all()
    assert (out / "textcls_seeds.png").stat().st_size > 10_000
    assert "## Verdict" in (out / "textcls_report.md").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not (REAL / "train.json").is_file(), reason="real TNEWS files are absent")
def test_real_tnews_runs_through_the_pipeline(kedro_project, kedro_run):
    raw = kedro_project / "data" / "01_raw" / "clue_tnews"
    raw.mkdir(parents=True)
    for name in ("train.json", "dev.json", "labels.json"):
        shutil.copy(REAL / name, raw / name)
    params = {**TINY["text_classification"], "data": {"source": "tnews", "max_train": 600},
              "experiment": {**PARAMS["experiment"], "seeds": [0]}}
    kedro_run(kedro_project, ["text_classification"],
              runtime_params={"text_classification": params})
    report = pd.read_json(kedro_project / "data/08_reporting/textcls_ingest_report.json",
                          typ="series")
    assert (report["train"], report["dev"], report["n_classes"]) == (600, 10000, 15)
    assert report["dev_in_train"] == 1099 and report["dev_in_train_distinct"] == 924
    dev = pd.read_parquet(kedro_project / "data/05_model_input/textcls_dev.parquet")
    assert int(dev["in_train"].sum()) == 1099
