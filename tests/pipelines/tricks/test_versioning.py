"""``--env gpu`` versions every persisted ``tricks`` output: two runs, two loadable versions."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from kexue.data.images.table import load_embedded
from kexue.pipelines.tricks.pipeline import RUNS

# gpu settings with the device and sizes forced down to a CPU smoke run
TINY_GPU = {"image_ingest": {"source": "digits", "split": {"n_val": 100, "n_test": 300}},
            "tricks": {"data": {"n_train": 100, "n_test": 50, "cpu_threads": 1},
                       "trainer": {"max_epochs": 1, "accelerator": "cpu"}}}
PERSISTED = ["tricks_train", "tricks_test", "tricks_metrics", "tricks_history", "tricks_curves",
             "tricks_report", "image_table", "image_rejects", "image_ingest_report",
             "images_train", "images_val", "images_test", "image_preview",
             *(f"tricks_{r}_model" for r in RUNS),
             *(f"tricks_{r}_history" for r in RUNS)]


@pytest.mark.slow
def test_two_gpu_env_runs_keep_two_versions_of_every_output(kedro_project, kedro_run, monkeypatch):
    # a user CSV (the embedded digits as pandas writes them) with two malformed lines appended
    raw = kedro_project / "data" / "01_raw" / "digits" / "digits.csv"
    raw.parent.mkdir(parents=True, exist_ok=True)
    load_embedded("digits").to_csv(raw, index=False)
    with raw.open("a") as handle:
        handle.write("1,2,3\n" + ",".join(["0"] * 64) + ",7.5\n")      # lines 1799 and 1800
    kedro_run(kedro_project, ["image_ingest", "tricks"], env="gpu", runtime_params=TINY_GPU)
    kedro_run(kedro_project, ["image_ingest", "tricks"], env="gpu", runtime_params=TINY_GPU)

    monkeypatch.chdir(kedro_project)
    bootstrap_project(kedro_project)
    with KedroSession.create(project_path=kedro_project, env="gpu") as session:
        catalog = session.load_context().catalog
    root = kedro_project / "data" / "gpu"
    assert not (kedro_project / "data" / "08_reporting" / "tricks_report.md").exists()
    all_versions = set()
    for name in PERSISTED:
        versions = catalog[name].list_versions(full_path=False)
        assert len(versions) == 2, (name, versions)
        all_versions.update(versions)
        for version in versions:                  # each version still loads on its own
            if name in ("tricks_curves", "image_preview"):   # kexue.io.FigureDataset: PNG bytes
                png = catalog.load(name, version=version)
                assert png == (root / f"08_reporting/{name}.png" / version / f"{name}.png"
                               ).read_bytes()
                assert png.startswith(b"\x89PNG") and len(png) > 5_000
            else:
                assert catalog.load(name, version=version) is not None
    assert len(all_versions) == 2                 # one timestamp per run, shared by all outputs
    old, new = sorted(all_versions)
    reports = {v: catalog.load("tricks_report", version=v) for v in (old, new)}
    assert f"Kedro run `{old}`" in reports[old] and f"Kedro run `{new}`" in reports[new]
    m_old = catalog.load("tricks_metrics", version=old)
    m_new = catalog.load("tricks_metrics", version=new)
    assert sorted(m_old["run"]) == sorted(RUNS)
    # same seed and data: the two runs reproduce each other
    pd.testing.assert_series_equal(m_old["test_acc"], m_new["test_acc"])
    assert (root / "08_reporting" / "tricks_report.md" / old / "tricks_report.md").is_file()
    # the CSV's malformed lines went to the (versioned) rejects with their line numbers
    rejects = catalog.load("image_rejects", version=new)
    assert rejects["line"].tolist() == [1799, 1800]
    assert rejects["file"].tolist() == ["data/01_raw/digits/digits.csv"] * 2
    assert rejects["reason"].tolist() == ["field_count", "bad_label"]
    ingest = catalog.load("image_ingest_report", version=new)
    assert (ingest["read"], ingest["accepted"], ingest["rejected"]) == (1799, 1797, 2)
    assert "read 1799, accepted 1797, rejected 2 (bad_label 1, field_count 1" in reports[new]
