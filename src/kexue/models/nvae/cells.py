"""NVAE building blocks: SE, residual cells (``skip + 0.1 * f(x)``), samplers and combiners.

Convolutions are plain (NVAE additionally uses weight normalisation with data-dependent init;
left out here -- the spectral regulariser acts on the plain weights).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kexue.models.nvae.config import CELLS

RESAMPLE = ("none", "down", "up")


class SE(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(W2 relu(W1 mean_hw(x)))``, hidden ``max(C/16, 4)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(channels // 16, 4)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(),
                                nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc(x.mean(dim=(2, 3)))      # (B, C)
        return x * gate[:, :, None, None]       # (B, C, H, W)


def _bn(c: int, momentum: float) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, momentum=momentum)


def _skip(cin: int, cout: int, resample: str) -> nn.Module:
    """Identity, or a 1x1 conv (stride 2 to downsample, after a nearest 2x upsampling)."""
    if resample == "down":
        return nn.Conv2d(cin, cout, 1, stride=2)
    if resample == "up":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 1))
    return nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)


class ResCell(nn.Module):
    """Encoder cell: ``skip + 0.1 * SE(Conv3x3(Swish(BN(Conv3x3(Swish(BN(x)))))))``.

    Args:
        cin: Input channels.
        cout: Output channels.
        resample: ``none``, ``down`` (first conv stride 2) or ``up`` (nearest 2x first).
        se: Append squeeze-and-excitation.
        momentum: BatchNorm momentum.
    """

    def __init__(self, cin: int, cout: int, resample: str = "none", se: bool = True,
                 momentum: float = 0.05) -> None:
        super().__init__()
        stride = 2 if resample == "down" else 1
        layers: list[nn.Module] = [_bn(cin, momentum), nn.SiLU()]
        if resample == "up":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), _bn(cout, momentum),
                   nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1)]
        if se:
            layers.append(SE(cout))
        self.f = nn.Sequential(*layers)
        self.skip = _skip(cin, cout, resample)

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + 0.1 * self.f(x)   # (B, cout, H', W')


class MBConvCell(nn.Module):
    """Decoder cell (inverted residual, NVAE ``mconv_e6k5``)::

        BN -> 1x1 expand xE -> BN -> Swish -> depthwise kxk -> BN -> Swish -> 1x1 -> BN -> SE

    output ``skip + 0.1 * f``. ``up`` upsamples (nearest 2x) after the expansion, ``down`` makes
    the depthwise conv stride 2.
    """

    def __init__(self, cin: int, cout: int, resample: str = "none", se: bool = True,
                 momentum: float = 0.05, expand: int = 6, kernel: int = 5) -> None:
        super().__init__()
        hid = cin * expand
        layers: list[nn.Module] = [_bn(cin, momentum), nn.Conv2d(cin, hid, 1, bias=False),
                                   _bn(hid, momentum), nn.SiLU()]
        if resample == "up":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        layers += [nn.Conv2d(hid, hid, kernel, stride=2 if resample == "down" else 1,
                             padding=kernel // 2, groups=hid, bias=False),
                   _bn(hid, momentum), nn.SiLU(), nn.Conv2d(hid, cout, 1, bias=False),
                   _bn(cout, momentum)]
        if se:
            layers.append(SE(cout))
        self.f = nn.Sequential(*layers)
        self.skip = _skip(cin, cout, resample)

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + 0.1 * self.f(x)   # (B, cout, H', W')


def make_cell(kind: str, cin: int, cout: int, resample: str = "none", se: bool = True,
              momentum: float = 0.05) -> nn.Module:
    """``res`` -> :class:`ResCell`, ``mbconv`` -> :class:`MBConvCell`."""
    if kind not in CELLS or resample not in RESAMPLE:
        raise ValueError(f"cell kind={kind!r} / resample={resample!r}: use {CELLS} / {RESAMPLE}")
    cls = ResCell if kind == "res" else MBConvCell
    return cls(cin, cout, resample, se, momentum)


class EncCombiner(nn.Module):
    """Encoder combiner: ``x_enc + Conv1x1(s_dec)``."""

    def __init__(self, c_enc: int, c_dec: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_dec, c_enc, 1)

    def forward(self, x_enc: Tensor, s_dec: Tensor) -> Tensor:
        return x_enc + self.conv(s_dec)          # (B, C, h, w)


class DecCombiner(nn.Module):
    """Decoder combiner: ``Conv1x1(concat(s, z))`` back to the state's width."""

    def __init__(self, channels: int, latent_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels + latent_channels, channels, 1)

    def forward(self, s: Tensor, z: Tensor) -> Tensor:
        return self.conv(torch.cat([s, z], dim=1))  # (B, C, h, w)


def enc_sampler(channels: int, latent_channels: int) -> nn.Module:
    """Posterior parameters ``(dmu, dlog_sig)`` from the combined feature: Conv3x3 -> 2L."""
    return nn.Conv2d(channels, 2 * latent_channels, 3, padding=1)


def dec_sampler(channels: int, latent_channels: int) -> nn.Module:
    """Prior parameters ``(mu_p, log_sig_p)`` from the top-down state: ELU -> Conv3x3 -> 2L."""
    return nn.Sequential(nn.ELU(), nn.Conv2d(channels, 2 * latent_channels, 3, padding=1))
