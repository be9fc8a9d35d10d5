"""``vqvae``: VQ-VAE (post 6760) with an EMA codebook and dead-code restart, a learned prior over
the code grid, and an evaluation beside the Keras MNIST anchor."""

from kexue.pipelines.vqvae.parameters import Parameters
from kexue.pipelines.vqvae.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
