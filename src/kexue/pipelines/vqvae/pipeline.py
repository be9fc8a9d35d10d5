"""``vqvae``: train -> encode every split -> prior -> evaluate -> report (images from
``image_ingest``, whose read + split nodes the registry puts in front)."""

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.vqvae.nodes import (
    encode_splits,
    evaluate_vqvae,
    report_vqvae,
    train_prior,
    train_vqvae,
)


def create_pipeline(**kwargs) -> Pipeline:
    """VQ-VAE, its code prior, the test-split evaluation and the report."""
    return Pipeline([
        Node(train_vqvae, inputs=["images_train", "image_ingest_report", "params:vqvae",
                                  "params:seed", "vqvae_autoencoder_checkpoints"],
             outputs=["vqvae_model", "vqvae_history"], name="train_vqvae_node"),
        Node(encode_splits, inputs=["vqvae_model", "images_train", "images_val", "images_test",
                                    "image_ingest_report"],
             outputs="vqvae_codes", name="encode_vqvae_codes_node"),
        Node(train_prior, inputs=["vqvae_codes", "vqvae_model", "params:vqvae", "params:seed",
                                  "vqvae_prior_checkpoints"],
             outputs=["vqvae_prior", "vqvae_prior_history"], name="train_vqvae_prior_node"),
        Node(evaluate_vqvae, inputs=["vqvae_model", "vqvae_prior", "vqvae_codes", "images_test",
                                     "image_ingest_report", "params:vqvae", "params:seed"],
             outputs=["vqvae_metrics", "vqvae_reconstructions", "vqvae_samples"],
             name="evaluate_vqvae_node"),
        Node(report_vqvae, inputs=["vqvae_metrics", "params:vqvae", "run_id"],
             outputs="vqvae_report", name="report_vqvae_node"),
    ], tags=["vqvae"])
