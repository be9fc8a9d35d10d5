"""Project pipelines: every folder under ``kexue/pipelines`` with ``create_pipeline()``."""

from __future__ import annotations

import importlib

from kedro.framework.project import find_pipelines
from kedro.framework.project import pipelines as project_pipelines
from kedro.pipeline import Pipeline

# Retraining pipelines read the current raw data through their family's ingestion nodes; the
# composition happens here (pipelines never import each other).
# name -> [(family pipeline, its nodes to run first; None = all of it)]
# Pipelines that read image_ingest's splits get its read + split nodes in front, so that
# `kedro run --pipelines tricks` works alone (adding `image_ingest` too changes nothing).
INGEST_FRONTS: dict[str, list[tuple[str, list[str] | None]]] = {
    "tricks": [("image_ingest", ["read_images_node", "split_images_node"])],
    "vqvae": [("image_ingest", ["read_images_node", "split_images_node"])],
    "nvae": [("image_ingest", ["read_images_node", "split_images_node"])],
}
RETRAIN_INGEST: dict[str, list[tuple[str, list[str] | None]]] = {
    "retrain_tricks": [("image_ingest", ["read_images_node", "split_images_node"]),
                       ("tricks", ["select_tricks_images_node"])],
    "retrain_entity_linking": [("ccks_ingest", None),
                               ("entity_linking", ["entity_linking_behaviour_node"])],
    "retrain_title_generation": [("corpus_ingest", None),
                                 ("title_generation", ["encode_title_pairs_node"])],
}


def _family(name: str) -> Pipeline:
    # find_pipelines may load only the requested pipelines (kedro >= 1.7): build the family's.
    return importlib.import_module(f"kexue.pipelines.{name}").create_pipeline()


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines; ``__default__`` runs all but the retraining ones
    (scheduled operations: ``kedro run --pipelines retrain_tricks``, ``retrain_entity_linking``,
    ``retrain_title_generation``, or ``retrain`` for all three).

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    requested = getattr(project_pipelines, "_requested_pipelines", None)
    if requested and "retrain" in requested:
        # `retrain` has no module of its own: kedro >= 1.7 would only import requested modules
        # (and fail on this one), so a request for it loads every pipeline.
        project_pipelines.set_requested(None)
    pipelines = find_pipelines(raise_errors=True)
    for name, parts in [*INGEST_FRONTS.items(), *RETRAIN_INGEST.items()]:
        if name in pipelines:
            for family, nodes in reversed(parts):
                front = _family(family)
                pipelines[name] = (front.only_nodes(*nodes) if nodes else front) + pipelines[name]
    retrains = [p for n, p in pipelines.items() if n.startswith("retrain_")]
    if retrains:   # every family's retraining at once (one Airflow DAG, one cron line)
        pipelines["retrain"] = sum(retrains, Pipeline([]))
    pipelines["__default__"] = sum((p for n, p in pipelines.items()
                                    if not n.startswith("retrain")), Pipeline([]))
    return pipelines
