"""VQ-VAE (Su's post 6760, van den Oord et al. 2017): quantiser, conv autoencoder, code priors
(Su's PixelAtt and a gated PixelCNN) and their LightningModules."""

from kexue.models.vqvae.config import PriorConfig, VQVAEConfig
from kexue.models.vqvae.model import VQVAE, VQVAEOutput
from kexue.models.vqvae.module import PriorModule, VQVAEModule
from kexue.models.vqvae.prior import (
    PRIORS,
    GatedPixelCNNPrior,
    PixelAttPrior,
    build_prior,
    nll_per_code,
    sample,
)
from kexue.models.vqvae.quantizer import QuantizerOutput, VectorQuantizer, perplexity_of

__all__ = [
    "PRIORS",
    "VQVAE",
    "GatedPixelCNNPrior",
    "PixelAttPrior",
    "PriorConfig",
    "PriorModule",
    "QuantizerOutput",
    "VQVAEConfig",
    "VQVAEModule",
    "VQVAEOutput",
    "VectorQuantizer",
    "build_prior",
    "nll_per_code",
    "perplexity_of",
    "sample",
]
