"""``nvae``: NVAE (post 7574) against a same-size single-latent VAE, by importance-weighted NLL."""

from kexue.pipelines.nvae.parameters import Parameters
from kexue.pipelines.nvae.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
