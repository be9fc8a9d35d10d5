"""``entity_linking`` wiring: behaviour modelling -> candidates -> model -> dev metrics / submission."""

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.entity_linking.nodes import (
    evaluate_linker,
    generate_candidates,
    learn_behaviour,
    predict_submission,
    report_linking,
    train_linker,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Nodes of the entity-linking pipeline (inputs come from ``ccks_ingest``)."""
    return Pipeline([
        Node(learn_behaviour,
             inputs=["ccks_aliases", "ccks_texts", "ccks_mentions", "params:entity_linking.pruning"],
             outputs="entity_linking_pruning", name="entity_linking_behaviour_node"),
        Node(generate_candidates, inputs=["ccks_aliases", "ccks_texts", "entity_linking_pruning"],
             outputs="entity_linking_candidates", name="entity_linking_candidates_node"),
        Node(train_linker,
             inputs=["ccks_entities", "ccks_aliases", "ccks_texts", "ccks_mentions",
                     "entity_linking_pruning", "entity_linking_word_vectors",
                     "params:entity_linking", "params:seed", "entity_linking_checkpoints"],
             outputs="entity_linking_model", name="entity_linking_train_node"),
        Node(evaluate_linker,
             inputs=["entity_linking_model", "ccks_entities", "ccks_aliases", "ccks_texts",
                     "ccks_mentions", "entity_linking_candidates", "entity_linking_pruning",
                     "params:entity_linking"],
             outputs=["entity_linking_dev_predictions", "entity_linking_metrics",
                      "entity_linking_confusion"],
             name="entity_linking_evaluate_node"),
        Node(report_linking,
             inputs=["entity_linking_metrics", "entity_linking_confusion", "entity_linking_pruning",
                     "entity_linking_model", "params:entity_linking", "run_id"],
             outputs="entity_linking_report", name="entity_linking_report_node"),
        Node(predict_submission,
             inputs=["entity_linking_model", "ccks_entities", "ccks_aliases", "ccks_predict_texts",
                     "entity_linking_pruning", "params:entity_linking"],
             outputs="entity_linking_submission", name="entity_linking_predict_node"),
    ], tags=["entity_linking"])
