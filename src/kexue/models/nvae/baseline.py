"""Single-latent convolutional VAE: the baseline that NVAE's hierarchy is compared against.

Same interface as :class:`kexue.models.nvae.model.NVAE` (``forward -> NVAEOutput`` with one
group, ``log_likelihood``, ``sample``), same :class:`Normal` (soft clamp, sigma floor) and the same
``Normal(0, 0)`` prior, so that the two differ only in the latent structure and the network.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from kexue.models.nvae.config import VAEConfig
from kexue.models.nvae.distributions import (
    Normal,
    likelihood_channels,
    likelihood_log_prob,
    likelihood_sample,
    std_normal_like,
)
from kexue.models.nvae.model import NVAEOutput


def _sum(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)  # (B, ...) -> (B,)


class ConvVAE(nn.Module):
    """``x (B,C,S,S) -> [Conv4x4/2 - BN - Swish] x 2 -> Conv1x1 -> (mu, log_sig) (B,L,S/4,S/4)``;
    decoder ``Conv1x1 - BN - Swish - [ConvT4x4/2 - BN - Swish] x 2 - Conv3x3`` to the
    likelihood parameters."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        h, lat, m = cfg.hidden, cfg.latent_channels, cfg.bn_momentum
        self.encoder = nn.Sequential(
            nn.Conv2d(cfg.in_channels, h, 4, stride=2, padding=1), nn.BatchNorm2d(h, momentum=m),
            nn.SiLU(),
            nn.Conv2d(h, 2 * h, 4, stride=2, padding=1), nn.BatchNorm2d(2 * h, momentum=m),
            nn.SiLU(),
            nn.Conv2d(2 * h, 2 * lat, 1))
        out_ch = likelihood_channels(cfg.likelihood, cfg.in_channels, cfg.n_mix)
        self.decoder = nn.Sequential(
            nn.Conv2d(lat, 2 * h, 1), nn.BatchNorm2d(2 * h, momentum=m), nn.SiLU(),
            nn.ConvTranspose2d(2 * h, h, 4, stride=2, padding=1), nn.BatchNorm2d(h, momentum=m),
            nn.SiLU(),
            nn.ConvTranspose2d(h, h, 4, stride=2, padding=1), nn.BatchNorm2d(h, momentum=m),
            nn.SiLU(),
            nn.Conv2d(h, out_ch, 3, padding=1))
        self.latent_size = cfg.image_size // 4

    def _prior(self, n: int, device: torch.device) -> Normal:
        k = self.latent_size
        return std_normal_like((n, self.cfg.latent_channels, k, k), device=device)

    def forward(self, x: Tensor) -> NVAEOutput:
        """Encode ``x`` in ``[0, 1]``, sample ``z ~ q(z|x)`` and decode (one latent group)."""
        q = Normal(*self.encoder(2.0 * x - 1.0).chunk(2, dim=1))    # (B, L, S/4, S/4)
        p = self._prior(x.shape[0], x.device)
        z = q.sample()
        params = self.decoder(z)                                      # (B, out, S, S)
        return NVAEOutput(params, [_sum(q.kl(p))], _sum(q.log_prob(z)), _sum(p.log_prob(z)))

    def log_likelihood(self, params: Tensor, x: Tensor) -> Tensor:
        """``log p(x | z)`` per image ``(B,)`` in nats."""
        return likelihood_log_prob(self.cfg.likelihood, params, x, self.cfg.n_mix)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` images in ``[0, 1]`` from ``z ~ N(0, (1.01 t)^2)``."""
        device = next(self.parameters()).device
        params = self.decoder(self._prior(n, device).sample(temperature))
        return likelihood_sample(self.cfg.likelihood, params, self.cfg.in_channels, self.cfg.n_mix)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def match_width(target_params: int, cfg: VAEConfig | None = None, lo: int = 4,
                hi: int = 512) -> int:
    """The ``hidden`` whose :class:`ConvVAE` parameter count is closest to ``target_params``
    (bisection: the count is increasing in ``hidden``)."""
    cfg = cfg or VAEConfig()

    def count(h: int) -> int:
        return count_params(ConvVAE(replace(cfg, hidden=h)))

    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < target_params else (lo, mid)
    return min((lo, hi), key=lambda h: abs(count(h) - target_params))
