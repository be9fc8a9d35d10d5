"""NVAE (Su's post 7574; Vahdat & Kautz 2020, NVlabs/NVAE): hierarchical VAE with residual Normal
posteriors, spectral regularisation, KL warm-up / balancing, BN re-estimation, importance-weighted
evaluation, and a single-latent ConvVAE baseline, with their LightningModules."""

from kexue.models.nvae.baseline import ConvVAE, count_params, match_width
from kexue.models.nvae.config import NVAEConfig, VAEConfig
from kexue.models.nvae.distributions import (
    Normal,
    bernoulli_log_prob,
    logistic_mixture_log_prob,
    logistic_mixture_sample,
    mixture_param_channels,
    residual_normal,
    soft_clamp,
)
from kexue.models.nvae.evaluation import bits_per_dim, elbo, iw_log_likelihood, reestimate_bn
from kexue.models.nvae.model import NVAE, NVAEOutput
from kexue.models.nvae.module import NVAEModule, VAEModule, nvae_optimizer
from kexue.models.nvae.schedule import (
    balanced_kl,
    kl_balance_alpha,
    kl_balance_coefficients,
    kl_coefficient,
)
from kexue.models.nvae.spectral import PowerIteration, bn_loss, spectral_loss, weight_2d

__all__ = [
    "NVAE",
    "ConvVAE",
    "NVAEConfig",
    "NVAEModule",
    "NVAEOutput",
    "Normal",
    "PowerIteration",
    "VAEConfig",
    "VAEModule",
    "balanced_kl",
    "bernoulli_log_prob",
    "bits_per_dim",
    "bn_loss",
    "count_params",
    "elbo",
    "iw_log_likelihood",
    "kl_balance_alpha",
    "kl_balance_coefficients",
    "kl_coefficient",
    "logistic_mixture_log_prob",
    "logistic_mixture_sample",
    "match_width",
    "mixture_param_channels",
    "nvae_optimizer",
    "reestimate_bn",
    "residual_normal",
    "soft_clamp",
    "spectral_loss",
    "weight_2d",
]
