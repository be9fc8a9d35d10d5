"""``ccks_ingest``: CCKS2019 kb_data/train.json/develop.json -> validated tables, rejects, report."""

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.ccks_ingest.nodes import (
    check_sources,
    ingest_develop,
    ingest_kb,
    ingest_train,
    report_ccks_ingest,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Check sources -> KB -> train (needs KB ids) and develop -> rejects + report."""
    return Pipeline([
        Node(check_sources, inputs=["ccks_kb_raw", "ccks_train_raw", "ccks_develop_raw"],
             outputs="ccks_sources", name="ccks_check_sources_node"),
        Node(ingest_kb, inputs=["ccks_kb_raw", "ccks_sources", "params:ccks_ingest"],
             outputs=["ccks_entities", "ccks_aliases", "ccks_kb_ids", "ccks_kb_rejects",
                      "ccks_kb_stats"],
             name="ccks_ingest_kb_node"),
        Node(ingest_train,
             inputs=["ccks_train_raw", "ccks_kb_ids", "ccks_sources", "params:ccks_ingest"],
             outputs=["ccks_texts", "ccks_mentions", "ccks_train_rejects", "ccks_train_stats"],
             name="ccks_ingest_train_node"),
        Node(ingest_develop, inputs=["ccks_develop_raw", "ccks_sources"],
             outputs=["ccks_predict_texts", "ccks_develop_rejects", "ccks_develop_stats"],
             name="ccks_ingest_develop_node"),
        Node(report_ccks_ingest,
             inputs=["ccks_sources", "ccks_kb_stats", "ccks_train_stats", "ccks_develop_stats",
                     "ccks_kb_rejects", "ccks_train_rejects", "ccks_develop_rejects",
                     "params:ccks_ingest"],
             outputs=["ccks_rejects", "ccks_ingest_report"], name="ccks_ingest_report_node"),
    ], tags=["ccks_ingest"])
