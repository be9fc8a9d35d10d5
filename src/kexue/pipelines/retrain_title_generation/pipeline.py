"""``retrain_title_generation``: challenger -> both decoded on test -> gate -> registry. The
registry wires ``corpus_ingest`` and the encoding node in front (current raw data)."""

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.retrain_title_generation.nodes import (
    decide_promotion,
    evaluate_candidates,
    train_challenger,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(train_challenger,
             inputs=["title_gen_encoded", "title_generation_champion", "title_vocab",
                     "params:title_generation", "params:retrain_title_generation",
                     "params:seed"],
             outputs="retrain_title_generation_challenger",
             name="retrain_title_generation_train_challenger_node"),
        Node(evaluate_candidates,
             inputs=["retrain_title_generation_challenger", "title_generation_champion",
                     "title_gen_encoded", "title_vocab", "params:title_generation"],
             outputs="retrain_title_generation_scores",
             name="retrain_title_generation_evaluate_node"),
        Node(decide_promotion,
             inputs=["retrain_title_generation_scores", "retrain_title_generation_challenger",
                     "params:retrain_title_generation", "run_id"],
             outputs=["title_generation_registry", "retrain_title_generation_decision",
                      "retrain_title_generation_report"],
             name="retrain_title_generation_gate_node"),
    ], tags=["retrain_title_generation"])
