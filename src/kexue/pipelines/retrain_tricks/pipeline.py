"""``retrain_tricks``: challenger -> scores of challenger and champion -> gate -> registry.

The registry wires the ``tricks`` ingestion in front (``tricks_train``, ``tricks_test`` from the
current raw data); this pipeline only adds the retraining nodes.
"""

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.retrain_tricks.nodes import (
    decide_promotion,
    evaluate_candidates,
    train_challenger,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(train_challenger,
             inputs=["tricks_train", "tricks_test", "tricks_champion", "params:tricks.data",
                     "params:tricks.model", "params:tricks.trainer", "params:tricks.optimizer",
                     "params:retrain_tricks", "params:seed", "run_id"],
             outputs="retrain_tricks_challenger", name="retrain_tricks_train_challenger_node"),
        Node(evaluate_candidates,
             inputs=["retrain_tricks_challenger", "tricks_champion", "tricks_test",
                     "params:tricks.data"],
             outputs="retrain_tricks_scores", name="retrain_tricks_evaluate_node"),
        Node(decide_promotion,
             inputs=["retrain_tricks_scores", "retrain_tricks_challenger",
                     "params:retrain_tricks", "run_id"],
             outputs=["tricks_registry", "retrain_tricks_decision", "retrain_tricks_report"],
             name="retrain_tricks_gate_node"),
    ], tags=["retrain_tricks"])
