"""Convolutional VQ-VAE: encoder -> :class:`VectorQuantizer` -> decoder (Su's post 6760).

Inputs are images scaled to ``[-0.5, 0.5]`` (as the Keras MNIST example); the decoder output is
*linear* (no tanh / sigmoid) and is trained with the MSE to the input. Each downsampling is a 4x4
stride-2 convolution (padding 1), so ``image_size`` must be divisible by ``2**n_downsample``:
28 -> 7 and 8 -> 2 with two, 128 -> 32 (Su's CelebA grid) with two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from kexue.models.vqvae.config import VQVAEConfig
from kexue.models.vqvae.quantizer import QuantizerOutput, VectorQuantizer


def make_norm(kind: str, channels: int) -> nn.Module:
    """``batch`` -> BatchNorm2d, ``group`` -> GroupNorm(gcd(channels, 8) groups), else Identity."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(channels, 8), channels)
    return nn.Identity()


class ResBlock(nn.Module):
    """``x + Conv1x1(ReLU(norm(Conv3x3(ReLU(x)))))`` (Su / zalando residual layer)."""

    def __init__(self, channels: int, hidden: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, hidden, 3, padding=1),
            make_norm(norm, hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)  # (B, C, H, W)


class Encoder(nn.Module):
    """``n_downsample`` x [Conv4x4/2 - norm - ReLU], residual blocks, ReLU, Conv1x1 to d."""

    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = cfg.in_channels
        for _ in range(cfg.n_downsample):
            layers += [nn.Conv2d(c_in, cfg.hidden, 4, stride=2, padding=1),
                       make_norm(cfg.norm, cfg.hidden), nn.ReLU()]
            c_in = cfg.hidden
        layers += [ResBlock(cfg.hidden, cfg.res_hidden, cfg.norm) for _ in range(cfg.n_res_blocks)]
        layers += [nn.ReLU(), nn.Conv2d(cfg.hidden, cfg.code_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, C, S, S) -> (B, d, S / 2**n, S / 2**n)


class Decoder(nn.Module):
    """Mirror of :class:`Encoder`: Conv1x1 from d, residual blocks, ReLU, then
    ``n_downsample`` ConvTranspose4x4/2 (norm + ReLU between them), linear output."""

    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cfg.code_dim, cfg.hidden, 1)]
        layers += [ResBlock(cfg.hidden, cfg.res_hidden, cfg.norm) for _ in range(cfg.n_res_blocks)]
        layers.append(nn.ReLU())
        for i in range(cfg.n_downsample):
            last = i == cfg.n_downsample - 1
            c_out = cfg.in_channels if last else cfg.hidden
            layers.append(nn.ConvTranspose2d(cfg.hidden, c_out, 4, stride=2, padding=1))
            if not last:
                layers += [make_norm(cfg.norm, cfg.hidden), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, z_q: Tensor) -> Tensor:
        return self.net(z_q)  # (B, d, h, w) -> (B, C, h * 2**n, w * 2**n)


@dataclass
class VQVAEOutput:
    """What :meth:`VQVAE.forward` returns.

    Attributes:
        x_hat: Reconstruction from the straight-through codes (linear output). (B, C, S, S)
        z: Encoder output before quantisation. (B, d, h, w)
        quant: The quantiser's :class:`QuantizerOutput` (z_q_st, z_q, indices, losses, ...).
    """

    x_hat: Tensor
    z: Tensor
    quant: QuantizerOutput


class VQVAE(nn.Module):
    """Encoder, vector quantiser and decoder built from a :class:`VQVAEConfig`."""

    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = VectorQuantizer(cfg.codebook_size, cfg.code_dim, ema=cfg.ema,
                                         decay=cfg.decay, eps=cfg.eps,
                                         dead_code_steps=cfg.dead_code_steps)
        self.decoder = Decoder(cfg)

    def forward(self, x: Tensor) -> VQVAEOutput:
        """Reconstruct ``x`` (B, C, S, S) scaled to [-0.5, 0.5]."""
        z = self.encoder(x)                # (B, d, h, w)
        quant = self.quantizer(z)
        x_hat = self.decoder(quant.z_q_st)  # (B, C, S, S)
        return VQVAEOutput(x_hat=x_hat, z=z, quant=quant)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Code ids of ``x`` (B, C, S, S) -> (B, h, w) int64 (no codebook update)."""
        z = self.encoder(x)  # (B, d, h, w)
        was = self.quantizer.training
        self.quantizer.eval()
        try:
            return self.quantizer(z).indices
        finally:
            self.quantizer.train(was)

    @torch.no_grad()
    def decode_indices(self, indices: Tensor) -> Tensor:
        """Images from code ids (B, h, w) -> (B, C, S, S), e.g. for prior samples."""
        return self.decoder(self.quantizer.lookup(indices))
