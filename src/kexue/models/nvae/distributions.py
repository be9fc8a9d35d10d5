"""Distributions of NVAE: the soft-clamped Normal (and its residual form) and the likelihoods.

:class:`Normal` follows NVAE's ``distributions.py``: ``mu`` and ``log_sigma`` are soft-clamped by
``5 tanh(x / 5)`` (so ``|mu|, |log_sigma| < 5``) and ``sigma = exp(log_sigma) + 1e-2``: the floor
of 0.01 keeps ``log q`` and the KL finite. Consequently ``Normal(0, 0)`` (NVAE's top prior) has
``sigma = 1.01``, not exactly 1.

Likelihoods return per-image log densities (summed over channels and pixels), shape ``(B,)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

SIGMA_FLOOR = 1e-2


def soft_clamp(x: Tensor, bound: float = 5.0) -> Tensor:
    """``bound * tanh(x / bound)``: identity near 0, smoothly bounded by ``+-bound``."""
    return bound * torch.tanh(x / bound)


class Normal:
    """Diagonal Normal with NVAE's soft clamp and sigma floor.

    Args:
        mu: Raw mean (soft-clamped here).
        log_sigma: Raw log standard deviation (soft-clamped, then ``sigma = exp(.) + 1e-2``).
    """

    def __init__(self, mu: Tensor, log_sigma: Tensor) -> None:
        self.mu = soft_clamp(mu)
        self.sigma = torch.exp(soft_clamp(log_sigma)) + SIGMA_FLOOR

    def sample(self, temperature: float = 1.0) -> Tensor:
        """Reparameterised ``mu + temperature * sigma * eps``; the temperature scales sigma."""
        return self.mu + temperature * self.sigma * torch.randn_like(self.mu)

    def log_prob(self, z: Tensor) -> Tensor:
        """Elementwise log density, same shape as ``z``."""
        u = (z - self.mu) / self.sigma
        return -0.5 * u * u - torch.log(self.sigma) - 0.5 * math.log(2 * math.pi)

    def kl(self, other: Normal) -> Tensor:
        """Elementwise closed-form ``KL(self || other)``.

        With ``dmu = (mu_q - mu_p) / sigma_p`` and ``r = sigma_q / sigma_p``:
        ``0.5 * (dmu^2 + r^2) - 0.5 - log r`` (the paper's residual-Normal KL).
        """
        dmu = (self.mu - other.mu) / other.sigma
        ratio = self.sigma / other.sigma
        return 0.5 * (dmu * dmu + ratio * ratio) - 0.5 - torch.log(ratio)


def residual_normal(mu_p: Tensor, log_sig_p: Tensor, dmu: Tensor, dlog_sig: Tensor) -> Normal:
    """NVAE's ``--res_dist`` posterior ``Normal(mu_p + dmu, log_sig_p + dlog_sig)`` (raw params)."""
    return Normal(mu_p + dmu, log_sig_p + dlog_sig)


def std_normal_like(shape: tuple[int, ...], device: torch.device | None = None) -> Normal:
    """NVAE's top prior ``Normal(0, 0)`` (sigma 1.01 because of the floor)."""
    zeros = torch.zeros(shape, device=device)
    return Normal(zeros, zeros)


# -- likelihoods --------------------------------------------------------------------------------
def bernoulli_log_prob(logits: Tensor, x: Tensor) -> Tensor:
    """``sum log Bernoulli(x | sigmoid(logits))`` per image: ``(B, C, H, W) -> (B,)``."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def mixture_param_channels(channels: int, n_mix: int) -> int:
    """Output channels of the mixture head: logits, means, log-scales and the channel coupling
    coefficients (``C(C-1)/2`` per component; PixelCNN++'s 3 for RGB): 100 for RGB, 10 mixtures."""
    return n_mix * (1 + 2 * channels + channels * (channels - 1) // 2)


def _split_mixture(params: Tensor, channels: int, n_mix: int) -> tuple[Tensor, ...]:
    """``(B, P, H, W)`` -> logits (B, M, H, W), means / log_scales (B, M, C, H, W), coeffs
    (B, M, K, H, W) with ``K = C(C-1)/2`` (tanh-squashed)."""
    b, _, h, w = params.shape
    n_coef = channels * (channels - 1) // 2
    logits, rest = params[:, :n_mix], params[:, n_mix:]
    rest = rest.reshape(b, n_mix, 2 * channels + n_coef, h, w)
    means = rest[:, :, :channels]
    log_scales = rest[:, :, channels:2 * channels].clamp(min=-7.0)
    coeffs = torch.tanh(rest[:, :, 2 * channels:])
    return logits, means, log_scales, coeffs


def _coupled_means(means: Tensor, coeffs: Tensor, x: Tensor) -> Tensor:
    """Channel ``c``'s mean plus ``sum_{j<c} coeff_cj * x_j`` (x in [-1, 1], (B, 1, C, H, W))."""
    out, k = [], 0
    for c in range(means.shape[2]):
        m = means[:, :, c]
        for j in range(c):
            m = m + coeffs[:, :, k] * x[:, :, j]
            k += 1
        out.append(m)
    return torch.stack(out, dim=2)  # (B, M, C, H, W)


def logistic_mixture_log_prob(params: Tensor, x: Tensor, n_mix: int, bins: int = 256) -> Tensor:
    """Discretised logistic mixture log-likelihood (PixelCNN++, Salimans et al. 2017) per image.

    Args:
        params: ``(B, mixture_param_channels(C, n_mix), H, W)``.
        x: ``(B, C, H, W)`` in ``[0, 1]`` on the grid ``k / (bins - 1)``; scaled to ``[-1, 1]``.
        n_mix: Mixture components.
        bins: Levels per channel (256 for 8-bit images); the edge bins extend to +-infinity.

    Returns:
        ``(B,)`` log-probabilities in nats (summed over channels and pixels).
    """
    channels = x.shape[1]
    logits, means, log_scales, coeffs = _split_mixture(params, channels, n_mix)
    xs = (2.0 * x - 1.0).unsqueeze(1)                     # (B, 1, C, H, W)
    centered = xs - _coupled_means(means, coeffs, xs)     # (B, M, C, H, W)
    inv_s = torch.exp(-log_scales)
    half = 1.0 / (bins - 1)
    plus_in = inv_s * (centered + half)
    min_in = inv_s * (centered - half)
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    log_cdf_plus = plus_in - F.softplus(plus_in)          # x at the lowest bin
    log_one_minus_cdf_min = -F.softplus(min_in)           # x at the highest bin
    mid_in = inv_s * centered
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in) - math.log((bins - 1) / 2)
    inner = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_pdf_mid)
    edge = 1.0 - 1e-3
    log_probs = torch.where(xs < -edge, log_cdf_plus,
                            torch.where(xs > edge, log_one_minus_cdf_min, inner))
    log_probs = log_probs.sum(2) + torch.log_softmax(logits, dim=1)  # (B, M, H, W)
    return torch.logsumexp(log_probs, dim=1).flatten(1).sum(1)


def logistic_mixture_sample(params: Tensor, channels: int, n_mix: int) -> Tensor:
    """Draw images ``(B, C, H, W)`` in ``[0, 1]`` from the mixture (component by Gumbel-max)."""
    logits, means, log_scales, coeffs = _split_mixture(params, channels, n_mix)
    gumbel = -torch.log(-torch.log(torch.rand_like(logits).clamp(1e-5, 1 - 1e-5)))
    onehot = F.one_hot((logits + gumbel).argmax(1), n_mix).permute(0, 3, 1, 2).float()
    sel = onehot.unsqueeze(2)                              # (B, M, 1, H, W)
    mu = (means * sel).sum(1)                              # (B, C, H, W)
    log_s = (log_scales * sel).sum(1)
    coef = (coeffs * sel).sum(1)                           # (B, K, H, W)
    u = torch.rand_like(mu).clamp(1e-5, 1 - 1e-5)
    noise = torch.exp(log_s) * (torch.log(u) - torch.log1p(-u))
    xs: list[Tensor] = []
    k = 0
    for c in range(channels):
        v = mu[:, c] + noise[:, c]
        for j in range(c):
            v = v + coef[:, k] * xs[j]
            k += 1
        xs.append(v.clamp(-1.0, 1.0))
    return (torch.stack(xs, dim=1) + 1.0) / 2.0


# -- dispatch by likelihood name (shared by NVAE and the ConvVAE baseline) -----------------------
def likelihood_channels(likelihood: str, channels: int, n_mix: int) -> int:
    """Channels of the decoder head: ``C`` logits (Bernoulli) or the mixture parameters."""
    return channels if likelihood == "bernoulli" else mixture_param_channels(channels, n_mix)


def likelihood_log_prob(likelihood: str, params: Tensor, x: Tensor, n_mix: int) -> Tensor:
    """``log p(x | params)`` per image ``(B,)``; ``x`` in ``[0, 1]``, binary for Bernoulli."""
    if likelihood == "bernoulli":
        return bernoulli_log_prob(params, x)
    return logistic_mixture_log_prob(params, x, n_mix)


def likelihood_sample(likelihood: str, params: Tensor, channels: int, n_mix: int) -> Tensor:
    """Images in ``[0, 1]``: the Bernoulli mean ``sigmoid(logits)``, or a mixture draw."""
    if likelihood == "bernoulli":
        return torch.sigmoid(params)
    return logistic_mixture_sample(params, channels, n_mix)
