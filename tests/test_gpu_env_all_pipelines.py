"""``--env gpu`` on every pipeline at once (forced to CPU, tiny sizes): each artifact is versioned.

The gpu env persists every in-memory intermediate through a versioned pickle catch-all, so this
also proves that everything the pipelines hand between nodes can be pickled, and that nothing is
written outside ``data/gpu``.
"""

from __future__ import annotations

import re

import pytest
import torch

from tests.conftest import allow_embedded_data

from tests.pipelines.entity_linking.test_pipeline import TINY as EL_TINY
from tests.pipelines.title_generation.test_pipeline import TINY as TG_TINY
from tests.pipelines.tricks.test_versioning import TINY_GPU as TRICKS_TINY
from tests.pipelines.vqvae.test_pipeline import TINY as VQ_TINY

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z$")
CPU = {"trainer": {"accelerator": "cpu"}}


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.mark.slow
def test_all_pipelines_under_gpu_env_version_every_artifact(kedro_project, kedro_run):
    runtime = {
        **TRICKS_TINY,
        "ccks_default": EL_TINY["ccks_default"],
        "entity_linking": _merge(EL_TINY["entity_linking"], CPU),
        "corpus_ingest": {"corpus": "default", "default": {"n_pairs": 80}},
        "title_generation": _merge(TG_TINY, CPU),
        "vqvae": _merge(VQ_TINY["vqvae"], {"trainer": {"max_epochs": 1},
                                           "autoencoder": {"trainer": {"max_epochs": 1}},
                                           "prior": {"trainer": {"max_epochs": 1}}}),
    }
    pipelines = ["image_ingest", "tricks", "ccks_ingest", "entity_linking", "corpus_ingest",
                 "title_generation", "vqvae", "reporting"]
    allow_embedded_data(kedro_project)         # CPU-sized embedded data, deliberately
    kedro_run(kedro_project, pipelines, env="gpu", runtime_params=runtime)

    data = kedro_project / "data"
    stray = [p for p in data.rglob("*") if p.is_file() and "gpu" not in p.relative_to(data).parts]
    assert not stray, f"gpu run wrote outside data/gpu: {stray[:5]}"
    files = [p for p in (data / "gpu").rglob("*") if p.is_file()]
    assert len(files) > 40
    stamps = set()
    for f in files:
        version_dir, dataset_dir, leaf = f.parent, f.parent.parent, f.name
        if f.parent.name == "report_figures":    # a folder dataset: <name>/<version>/<name>/*
            version_dir, dataset_dir, leaf = f.parent.parent, f.parent.parent.parent, f.parent.name
        assert STAMP.match(version_dir.name), f"{f} is not inside a version folder"
        assert dataset_dir.name == leaf, f
        stamps.add(version_dir.name)
    assert len(stamps) == 1  # one run = one save version shared by every artifact (lineage key)
    assert (data / "gpu" / "08_reporting" / "report.html").is_dir()     # the report too
    # in-memory hand-offs of base are persisted (and versioned) by the gpu catch-all
    artifacts = {f.name for f in (data / "gpu" / "09_run_artifacts").rglob("*.pkl") if f.is_file()}
    assert {"ccks_sources.pkl", "ccks_train_stats.pkl", "ccks_kb_ids.pkl",
            "title_pairs_raw.pkl", "title_gen_encoded.pkl"} <= artifacts, \
        artifacts

    # Every hand-off is persisted, so a partial re-run from a node that consumed one of them
    # (ccks_kb_ids, title_gen_encoded: in memory in base) works and writes a second version.
    kedro_run(kedro_project, pipelines, env="gpu", runtime_params=runtime,
              from_nodes=["ccks_ingest_train_node", "train_title_l2r_baseline_node"])
    reruns = {p.parent.name for p in (data / "gpu" / "06_models").rglob("*") if p.is_file()}
    assert len(reruns) == 2, reruns                 # first run + the --from-nodes run


def _only_tricks(project, kedro_run, runtime, env="gpu"):
    raw = project / "data" / "01_raw" / "digits" / "digits.csv"
    raw.parent.mkdir(parents=True, exist_ok=True)
    from kexue.data.images.table import load_embedded
    load_embedded("digits").to_csv(raw, index=False)
    return kedro_run(project, ["image_ingest", "tricks"], env=env, runtime_params=runtime)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_gpu_env_without_cuda_fails_before_the_first_node(kedro_project, kedro_run):
    from kexue.config import ConfigError

    runtime = {"image_ingest": {"source": "digits"},
               "tricks": {"data": {"n_train": 100, "n_test": 50}}}
    with pytest.raises(ConfigError, match=r"CUDA GPU \(tricks\.trainer\.accelerator.*"
                                          r"tricks\.trainer\.accelerator=cpu"):
        _only_tricks(kedro_project, kedro_run, runtime)
    written = [p for p in (kedro_project / "data").rglob("*") if p.is_file()
               and "01_raw" not in p.parts]
    assert written == []                            # no node ran


def test_gpu_env_refuses_embedded_data_before_the_first_node(kedro_project, kedro_run):
    """No real files under --env gpu: one error listing every missing path, nothing run."""
    from kexue.config import ConfigError

    runtime = {"tricks": {"trainer": {"accelerator": "cpu"}}, "corpus_ingest": {"corpus": "default"}}
    with pytest.raises(ConfigError) as err:
        kedro_run(kedro_project, ["image_ingest", "tricks", "ccks_ingest", "corpus_ingest"],
                  env="gpu", runtime_params=runtime)
    msg = str(err.value)
    for needle in ("data/01_raw/ccks2019_el/kb_data", "data/01_raw/ccks2019_el/train.json",
                   "image_mnist_idx: No IDX images in ", "data/01_raw/mnist (expected train-images",
                   "corpus_ingest.corpus is 'default'",
                   "embedded_defaults: true"):
        assert needle in msg, needle
    assert "digits.csv" not in msg and "cifar" not in msg   # unselected sources: not required
    import mlflow

    assert mlflow.active_run() is None              # the refused run's MLflow run was closed
    assert not [p for p in (kedro_project / "data").rglob("*") if p.is_file()]
    # the gpu env's own corpus choice (csl) names its missing folder and the parameter
    with pytest.raises(ConfigError, match=r"corpus_ingest.corpus is 'csl' but .*csl"):
        kedro_run(kedro_project, ["corpus_ingest"], env="gpu")
