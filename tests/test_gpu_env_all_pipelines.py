"""``--env gpu`` on every pipeline at once (forced to CPU, tiny sizes): each artifact is versioned.

The gpu env persists every in-memory intermediate through a versioned pickle catch-all, so this
also proves that everything the pipelines hand between nodes can be pickled, and that nothing is
written outside ``data/gpu``.
"""

from __future__ import annotations

import re

import pytest

from tests.pipelines.entity_linking.test_pipeline import TINY as EL_TINY
from tests.pipelines.title_generation.test_pipeline import TINY as TG_TINY
from tests.pipelines.tricks.test_versioning import TINY_GPU as TRICKS_TINY

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
        "corpus_ingest": {"default": {"n_pairs": 80}},
        "title_generation": _merge(TG_TINY, CPU),
    }
    pipelines = ["tricks", "ccks_ingest", "entity_linking", "corpus_ingest", "title_generation"]
    kedro_run(kedro_project, pipelines, env="gpu", runtime_params=runtime)

    data = kedro_project / "data"
    stray = [p for p in data.rglob("*") if p.is_file() and "gpu" not in p.relative_to(data).parts]
    assert not stray, f"gpu run wrote outside data/gpu: {stray[:5]}"
    files = [p for p in (data / "gpu").rglob("*") if p.is_file()]
    assert len(files) > 40
    stamps = set()
    for f in files:
        version_dir, dataset_dir = f.parent, f.parent.parent
        assert STAMP.match(version_dir.name), f"{f} is not inside a version folder"
        assert dataset_dir.name == f.name, f
        stamps.add(version_dir.name)
    assert len(stamps) == 1  # one run = one save version shared by every artifact (lineage key)
    # in-memory hand-offs of base are persisted (and versioned) by the gpu catch-all
    artifacts = {f.name for f in (data / "gpu" / "09_run_artifacts").rglob("*.pkl") if f.is_file()}
    assert {"tricks_images.pkl", "ccks_sources.pkl", "ccks_train_stats.pkl",
            "title_pairs_raw.pkl", "corpus_read_stats.pkl"} <= artifacts, artifacts
