"""Self-modulated layer normalisation (post 6877, ``SelfModulatedLayerNormalization``).

``y = LN(x) * (1 + gamma(c)) + beta(c)`` where ``LN`` has no affine parameters and ``gamma``,
``beta`` are two-layer MLPs (``Dense(hidden, relu) -> Dense(dim)``) of a conditioning vector ``c``
(in the bidirectional decoder: the masked max-pool of the encoder states).

Deviation from Su's Keras code, on purpose: the last Dense of each MLP is zero-initialised (Su
used the Keras default Glorot init), so a fresh layer is exactly a plain affine-free LayerNorm and
the modulation is learned from there. ``eps`` defaults to PyTorch's 1e-5.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SelfModulatedLayerNorm"]


class SelfModulatedLayerNorm(nn.Module):
    """LayerNorm whose scale and shift are predicted from a condition vector.

    Args:
        dim: feature size ``D`` of ``x`` (normalised over the last axis).
        cond_dim: feature size ``C`` of the condition.
        hidden: hidden units of the gamma/beta MLPs (Su: 32).
        eps: LayerNorm epsilon.

    Attributes:
        gamma: ``Linear(C, hidden) -> ReLU -> Linear(hidden, D)`` (last layer zero-init).
        beta: same structure, separate weights.
    """

    def __init__(self, dim: int, cond_dim: int, hidden: int = 32, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.gamma = nn.Sequential(nn.Linear(cond_dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.beta = nn.Sequential(nn.Linear(cond_dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        for mlp in (self.gamma, self.beta):
            nn.init.zeros_(mlp[2].weight)
            nn.init.zeros_(mlp[2].bias)

    def forward(self, x: Tensor, cond: Tensor, mask: Tensor | None = None) -> Tensor:
        """Normalise ``x`` per position and modulate it with ``cond``.

        Args:
            x: ``(B, L, D)`` (or any ``(B, ..., D)``).
            cond: ``(B, C)``; broadcast over the middle axes of ``x``.
            mask: optional ``(B, L)`` bool; padded positions of the output are set to 0.

        Returns:
            Tensor shaped like ``x``.
        """
        if x.shape[-1] != self.dim:
            raise ValueError(f"SelfModulatedLayerNorm(dim={self.dim}) got x with last dim "
                             f"{x.shape[-1]}; pass dim=x.shape[-1]")
        h = F.layer_norm(x, (self.dim,), eps=self.eps)  # (B, L, D)
        gamma = self.gamma(cond)  # (B, D)
        beta = self.beta(cond)  # (B, D)
        for _ in range(x.dim() - cond.dim()):
            gamma = gamma.unsqueeze(1)
            beta = beta.unsqueeze(1)
        out = h * (1 + gamma) + beta
        if mask is not None:
            m = mask != 0
            while m.dim() < out.dim():
                m = m.unsqueeze(-1)
            out = out.masked_fill(~m, 0.0)
        return out
