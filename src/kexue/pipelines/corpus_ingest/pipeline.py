"""``corpus_ingest``: raw title corpus -> ``title_pairs``, ``title_vocab``, rejects and a report."""

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.corpus_ingest.nodes import (
    build_title_vocab,
    read_title_corpus,
    report_corpus_ingest,
    split_title_pairs,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Read -> split -> vocabulary -> report (the selected corpus is a parameter)."""
    return Pipeline([
        Node(read_title_corpus,
             inputs=["csl_raw", "lcsts_raw", "thucnews_raw", "params:corpus_ingest"],
             outputs=["title_pairs_raw", "title_rejects", "corpus_read_stats"],
             name="read_title_corpus_node"),
        Node(split_title_pairs, inputs=["title_pairs_raw", "params:corpus_ingest"],
             outputs="title_pairs", name="split_title_pairs_node"),
        Node(build_title_vocab, inputs=["title_pairs", "params:corpus_ingest"],
             outputs="title_vocab", name="build_title_vocab_node"),
        Node(report_corpus_ingest,
             inputs=["corpus_read_stats", "title_pairs", "title_rejects", "title_vocab",
                     "params:corpus_ingest"],
             outputs="corpus_ingest_report", name="report_corpus_ingest_node"),
    ], tags=["corpus_ingest"])
