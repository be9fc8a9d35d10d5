"""NVAE's KL schedules: the linear KL warm-up and the per-group KL balancing used during it."""

from __future__ import annotations

import torch
from torch import Tensor


def kl_coefficient(step: int, total_steps: int, warmup_frac: float = 0.3,
                   min_coeff: float = 1e-4) -> float:
    """``max(min((step - 1e-4 T) / (warmup_frac T), 1), min_coeff)`` with ``T = total_steps``.

    NVAE's ``kl_coeff`` (``kl_const_portion 1e-4``, ``kl_anneal_portion 0.3``,
    ``kl_const_coeff 1e-4``): ``min_coeff`` at the start, linear, 1 from ``warmup_frac * T`` on.
    ``warmup_frac = 0`` disables the warm-up (always 1).
    """
    if warmup_frac <= 0 or total_steps <= 0:
        return 1.0
    t = float(total_steps)
    return max(min((step - 1e-4 * t) / (warmup_frac * t), 1.0), min_coeff)


def kl_balance_alpha(groups_per_scale: list[int]) -> Tensor:
    """NVAE's ``kl_balancer_coeff(fun="square")`` for groups listed top (coarsest) scale first.

    Scale ``s`` counted from the top (``s = 0`` coarsest) gives ``alpha = (2^s)^2 / groups_in_s``
    to each of its groups; the result is divided by its minimum. Shape ``(G,)``.
    """
    alpha = torch.cat([torch.full((g,), (2.0 ** s) ** 2 / g)
                       for s, g in enumerate(groups_per_scale)])
    return alpha / alpha.min()


def kl_balance_coefficients(kl_per_group: Tensor, alpha: Tensor) -> Tensor:
    """Per-group KL weights ``(G,)`` with mean 1 (NVAE's ``kl_balancer``), without gradient.

    ``c_g ∝ (mean_b |KL_gb| + 0.01) / alpha_g``, normalised so that ``mean_g c_g = 1``: groups
    with a large KL (relative to their size ``alpha``) are pushed harder, which counters the
    collapse of the others.

    Args:
        kl_per_group: ``(G, B)`` per-image KLs or ``(G,)`` batch means.
        alpha: ``(G,)`` from :func:`kl_balance_alpha`.
    """
    kl = kl_per_group.detach()
    mean_abs = kl.abs().mean(dim=1) if kl.dim() == 2 else kl.abs()     # (G,)
    coeff = (mean_abs + 0.01) / alpha.to(mean_abs)
    return coeff / coeff.mean()


def balanced_kl(kl_per_group: list[Tensor], beta: float, alpha: Tensor | None) -> Tensor:
    """``sum_g c_g KL_g`` per image ``(B,)``: balanced while ``beta < 1`` and ``alpha`` is given,
    the plain sum otherwise (NVAE applies the balancing during the warm-up only)."""
    kl = torch.stack(kl_per_group)                                     # (G, B)
    if alpha is None or beta >= 1.0:
        return kl.sum(0)
    return (kl_balance_coefficients(kl, alpha)[:, None] * kl).sum(0)
