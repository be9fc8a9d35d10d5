"""The run manifest (kexue.manifest): written through the catalog at the end of every run, with
the parameters hash, git state and the load / save version of every dataset the run touched;
under --env gpu it is versioned with the run and its versions are the run's."""

from __future__ import annotations

import json
import os

import pytest
import torch

from kexue.manifest import parameters_hash
from tests.conftest import allow_embedded_data
from tests.pipelines.tricks.test_versioning import TINY_GPU


def two_tricks_runs_on_other_data(project, kedro_run):
    """gpu-env ``tricks`` run A, then run B on another split: ``(data root, A's, B's version)``."""
    allow_embedded_data(project)
    other = {**TINY_GPU, "image_ingest": {**TINY_GPU["image_ingest"],
                                          "split": {"n_val": 100, "n_test": 500}}}
    kedro_run(project, ["tricks"], env="gpu", runtime_params=TINY_GPU)        # A
    kedro_run(project, ["tricks"], env="gpu", runtime_params=other)           # B
    root = project / "data/gpu"
    a, b = sorted(p.name for p in (root / "08_reporting/run_manifest.json").iterdir())
    return root, a, b


def test_parameters_hash_is_canonical():
    assert parameters_hash({"a": 1, "b": {"c": [1, 2]}}) == parameters_hash({"b": {"c": [1, 2]},
                                                                            "a": 1})
    assert parameters_hash({"a": 1}) != parameters_hash({"a": 2})


@pytest.mark.slow
def test_gpu_run_writes_a_versioned_manifest_of_what_it_touched(kedro_project, kedro_run):
    allow_embedded_data(kedro_project)
    kedro_run(kedro_project, ["tricks"], env="gpu", runtime_params=TINY_GPU)
    (path,) = (kedro_project / "data/gpu/08_reporting/run_manifest.json").glob("*/run_manifest.json")
    m = json.loads(path.read_text())
    run_id = path.parent.name
    assert m["run_id"] == run_id and m["env"] == "gpu" and m["status"] == "finished"
    assert m["pipelines"] == ["tricks"] and len(m["parameters_sha256"]) == 64
    assert set(m["git"]) == {"git_commit", "git_dirty"} and m["packages"]["kedro"]
    ds = m["datasets"]
    assert ds["images_train"] == {"loaded": run_id, "saved": run_id, "type": "ParquetDataset"}
    assert ds["tricks_adam_bs1_model"]["saved"] == run_id
    assert ds["image_mnist_csv"]["loaded"] is None          # raw, unversioned input
    assert m["runtime_params"]["tricks"]["trainer"]["max_epochs"] == 1
    # which CPU kernels computed the figures (they differ by float rounding between CPUs)
    assert m["device"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert m["device"]["cpus"] == os.cpu_count() and m["device"]["cuda"] == torch.cuda.is_available()


@pytest.mark.slow
def test_rerun_pinned_to_an_earlier_runs_input_versions(kedro_project, kedro_run):
    """Run A, then run B on other data (another split), then re-run tricks from its selection
    node with the inputs pinned to A's versions (what A's manifest lists): the re-run trains on
    A's data, not on the newer B's, and its manifest says so."""
    import pandas as pd

    root, a, b = two_tricks_runs_on_other_data(kedro_project, kedro_run)
    manifest_a = json.loads((root / f"08_reporting/run_manifest.json/{a}/run_manifest.json")
                            .read_text())
    pins = {n: manifest_a["datasets"][n]["saved"]
            for n in ("images_train", "images_test", "image_ingest_report")}
    assert set(pins.values()) == {a}
    kedro_run(kedro_project, ["tricks"], env="gpu", runtime_params=TINY_GPU,
              from_nodes=["select_tricks_images_node"], load_versions=pins)         # C
    c = max(p.name for p in (root / "08_reporting/run_manifest.json").iterdir())
    manifest_c = json.loads((root / f"08_reporting/run_manifest.json/{c}/run_manifest.json")
                            .read_text())
    assert {n: manifest_c["datasets"][n]["loaded"] for n in pins} == pins
    test = {v: pd.read_parquet(root / f"05_model_input/tricks_test.parquet/{v}/"
                               "tricks_test.parquet") for v in (a, b, c)}
    pd.testing.assert_frame_equal(test[c], test[a])           # A's data, reproduced exactly
    assert not test[b].equals(test[a])                        # B really differed
