"""``title_generation``: title_pairs + title_vocab -> L2R / R2L baselines + bidirectional model
(+ second pass) -> metrics/report."""

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.title_generation.nodes import (
    encode_title_pairs,
    evaluate_title_generation,
    lead_n_baseline,
    report_title_generation,
    train_title_bidirectional,
    train_title_l2r_baseline,
    train_title_r2l_baseline,
    train_title_second_pass,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Encode -> lead-N; train L2R / R2L baselines and bidirectional -> (second pass) -> evaluate
    -> report."""
    return Pipeline([
        Node(encode_title_pairs,
             inputs=["title_pairs", "title_vocab", "params:title_generation.data"],
             outputs="title_gen_encoded", name="encode_title_pairs_node"),
        Node(lead_n_baseline, inputs=["title_gen_encoded", "params:title_generation"],
             outputs="title_generation_lead", name="lead_n_baseline_node"),
        Node(train_title_l2r_baseline,
             inputs=["title_gen_encoded", "params:title_generation", "params:seed",
                     "title_gen_l2r_checkpoints"],
             outputs="title_gen_l2r_model", name="train_title_l2r_baseline_node"),
        Node(train_title_r2l_baseline,
             inputs=["title_gen_encoded", "params:title_generation", "params:seed",
                     "title_gen_r2l_checkpoints"],
             outputs="title_gen_r2l_model", name="train_title_r2l_baseline_node"),
        Node(train_title_bidirectional,
             inputs=["title_gen_encoded", "params:title_generation", "params:seed",
                     "title_gen_bidirectional_checkpoints"],
             outputs="title_gen_bidirectional_model", name="train_title_bidirectional_node"),
        Node(train_title_second_pass,
             inputs=["title_gen_bidirectional_model", "title_gen_encoded",
                     "params:title_generation", "params:seed",
                     "title_gen_second_pass_checkpoints"],
             outputs="title_gen_second_pass_model", name="train_title_second_pass_node"),
        Node(evaluate_title_generation,
             inputs=["title_gen_l2r_model", "title_gen_r2l_model", "title_gen_bidirectional_model",
                     "title_gen_second_pass_model", "title_gen_encoded", "title_vocab",
                     "params:title_generation"],
             outputs=["title_generation_metrics", "title_generation_samples",
                      "title_generation_leakage"],
             name="evaluate_title_generation_node"),
        Node(report_title_generation,
             inputs=["title_generation_metrics", "title_generation_samples",
                     "title_generation_leakage", "title_pairs", "params:title_generation",
                     "run_id", "title_generation_lead"],
             outputs="title_generation_report", name="report_title_generation_node"),
    ], tags=["title_generation"])
