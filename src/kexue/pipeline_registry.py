"""Project pipelines: every folder under ``kexue/pipelines`` with ``create_pipeline()``."""

from __future__ import annotations

import importlib

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Retraining pipelines read the current raw data through their family's ingestion nodes; the
# composition happens here (pipelines never import each other).
RETRAIN_INGEST = {"retrain_tricks": ("tricks", ["ingest_images_node", "split_images_node"])}


def _family(name: str) -> Pipeline:
    # find_pipelines may load only the requested pipelines (kedro >= 1.7): build the family's.
    return importlib.import_module(f"kexue.pipelines.{name}").create_pipeline()


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines; ``__default__`` runs all but the ``retrain_*`` ones
    (scheduled operations: ``kedro run --pipelines retrain_tricks``).

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    for name, (family, nodes) in RETRAIN_INGEST.items():
        if name in pipelines:
            pipelines[name] = _family(family).only_nodes(*nodes) + pipelines[name]
    pipelines["__default__"] = sum((p for n, p in pipelines.items()
                                    if not n.startswith("retrain_")), Pipeline([]))
    return pipelines
