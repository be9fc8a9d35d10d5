"""``nvae``: NVAE and the baseline VAE -> evaluation -> report (images from ``image_ingest``,
whose read + split nodes the registry puts in front)."""

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.nvae.nodes import evaluate_models, report_nvae, train_baseline, train_nvae


def create_pipeline(**kwargs) -> Pipeline:
    """NVAE vs a same-budget VAE by importance-weighted likelihood."""
    return Pipeline([
        Node(train_nvae, inputs=["images_train", "image_ingest_report", "params:nvae",
                                 "params:seed", "nvae_nvae_checkpoints"],
             outputs="nvae_model", name="train_nvae_node"),
        Node(train_baseline, inputs=["images_train", "image_ingest_report", "params:nvae",
                                     "params:seed", "nvae_vae_checkpoints"],
             outputs="nvae_baseline", name="train_nvae_baseline_node"),
        Node(evaluate_models, inputs=["nvae_model", "nvae_baseline", "images_test",
                                      "image_ingest_report", "params:nvae", "params:seed"],
             outputs=["nvae_metrics", "nvae_kl_per_group", "nvae_samples"],
             name="evaluate_nvae_node"),
        Node(report_nvae, inputs=["nvae_metrics", "nvae_kl_per_group", "image_ingest_report",
                                  "run_id"],
             outputs="nvae_report", name="report_nvae_node"),
    ], tags=["nvae"])
