"""Tiny configs and data shared by the NVAE tests."""

from __future__ import annotations

import torch

from kexue.models.nvae import NVAEConfig, VAEConfig

TINY_NVAE = dict(channels=8, latent_channels=2, scales=2, groups_per_scale=2)
TINY_VAE = dict(hidden=8, latent_channels=2)


def tiny_nvae_cfg(**kw: object) -> NVAEConfig:
    return NVAEConfig(**{**TINY_NVAE, **kw})


def tiny_vae_cfg(**kw: object) -> VAEConfig:
    return VAEConfig(**{**TINY_VAE, **kw})


def binary_digits(n: int, seed: int = 0, size: int = 28) -> torch.Tensor:
    """Binary images ``(n, 1, size, size)``: noisy copies of 4 sparse random prototypes."""
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(4, 1, size, size, generator=g) < 0.15).float()
    x = protos[torch.randint(0, 4, (n,), generator=g)]
    flip = torch.rand(x.shape, generator=g) < 0.02
    return torch.where(flip, 1 - x, x)
