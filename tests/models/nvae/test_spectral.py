"""Power iteration against the exact spectral norm; the BN-scale term."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kexue.models.nvae.spectral import PowerIteration, bn_loss, spectral_loss, weight_2d


def test_power_iteration_converges_to_the_matrix_2_norm() -> None:
    torch.manual_seed(0)
    w = torch.randn(16, 3, 3, 3)
    exact = torch.linalg.matrix_norm(weight_2d(w), ord=2).item()
    state = PowerIteration()
    first = state.sigma("w", weight_2d(w), n_iters=1, init_iters=1).item()
    for _ in range(300):                      # 1 iteration per call, as per training step
        est = state.sigma("w", weight_2d(w), n_iters=1).item()
    assert est == pytest.approx(exact, rel=1e-3)
    assert first <= exact + 1e-4              # u^T W v never exceeds sigma_max
    assert abs(first - exact) > abs(est - exact)


def test_spectral_loss_sums_conv_and_linear_norms_with_gradient() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 5, 3), nn.BatchNorm2d(5), nn.Flatten(), nn.Linear(20, 3))
    exact = sum(torch.linalg.matrix_norm(weight_2d(m.weight), ord=2).item()
                for m in (model[0], model[3]))
    for _ in range(200):
        loss = spectral_loss(model, n_iters=1, init_iters=10)
    assert loss.item() == pytest.approx(exact, rel=1e-3)
    loss.backward()
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0


def test_bn_loss_is_sum_of_max_abs_gamma() -> None:
    model = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 3, 1), nn.BatchNorm2d(2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([0.5, -2.0, 1.0]))
        model[2].weight.copy_(torch.tensor([0.3, 0.7]))
    assert bn_loss(model).item() == pytest.approx(2.0 + 0.7)
