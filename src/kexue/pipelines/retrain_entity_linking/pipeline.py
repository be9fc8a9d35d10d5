"""``retrain_entity_linking``: challenger -> both scored on dev -> gate -> registry. The
registry wires ``ccks_ingest`` and the behaviour-modelling node in front (current raw data)."""

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.retrain_entity_linking.nodes import (
    decide_promotion,
    evaluate_candidates,
    train_challenger,
)

TABLES = ["ccks_entities", "ccks_aliases", "ccks_texts", "ccks_mentions", "entity_linking_pruning"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(train_challenger,
             inputs=[*TABLES, "entity_linking_word_vectors", "params:entity_linking",
                     "params:retrain_entity_linking", "params:seed"],
             outputs="retrain_entity_linking_challenger",
             name="retrain_entity_linking_train_challenger_node"),
        Node(evaluate_candidates,
             inputs=["retrain_entity_linking_challenger", "entity_linking_champion", *TABLES,
                     "params:entity_linking"],
             outputs="retrain_entity_linking_scores", name="retrain_entity_linking_evaluate_node"),
        Node(decide_promotion,
             inputs=["retrain_entity_linking_scores", "retrain_entity_linking_challenger",
                     "params:retrain_entity_linking", "run_id"],
             outputs=["entity_linking_registry", "retrain_entity_linking_decision",
                      "retrain_entity_linking_report"],
             name="retrain_entity_linking_gate_node"),
    ], tags=["retrain_entity_linking"])
