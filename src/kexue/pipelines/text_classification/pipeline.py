"""``text_classification``: ingest -> vocabulary -> one training node per method (all seeds) ->
comparison -> per-seed plot -> report."""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.text_classification.nodes_ingest import ingest_text
from kexue.pipelines.text_classification.nodes_train import (
    build_vocab,
    compare_methods,
    plot_seeds,
    report,
    train_method,
)

METHODS = ("plain", "fgm_su", "fgm_sum", "gp")   # declared under params:...methods


def _train(method: str) -> Node:
    return Node(update_wrapper(partial(train_method, method=method), train_method),
                inputs=["textcls_train", "textcls_dev", "textcls_vocab",
                        "params:text_classification"],
                outputs=f"textcls_{method}_runs", name=f"train_textcls_{method}_node")


def create_pipeline(**kwargs) -> Pipeline:
    """The adversarial-training comparison over seeds."""
    return Pipeline([
        Node(ingest_text, inputs=["textcls_tnews_raw", "textcls_iflytek_raw",
                                  "textcls_fewclue_iflytek_raw", "textcls_chnsenticorp_raw",
                                  "params:text_classification", "params:seed"],
             outputs=["textcls_train", "textcls_dev", "textcls_rejects",
                      "textcls_ingest_report"], name="ingest_textcls_node"),
        Node(build_vocab, inputs=["textcls_train", "params:text_classification"],
             outputs="textcls_vocab", name="build_textcls_vocab_node"),
        *[_train(m) for m in METHODS],
        Node(compare_methods, inputs={m: f"textcls_{m}_runs" for m in METHODS},
             outputs=["textcls_metrics", "textcls_seeds"], name="compare_textcls_node"),
        Node(plot_seeds, inputs="textcls_seeds", outputs="textcls_seeds_plot",
             name="plot_textcls_seeds_node"),
        Node(report, inputs=["textcls_metrics", "textcls_ingest_report",
                             "params:text_classification", "run_id"],
             outputs="textcls_report", name="report_textcls_node"),
    ], tags=["text_classification"])
