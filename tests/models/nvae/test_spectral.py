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
    assert state.sigma("w", weight_2d(w), n_iters=1).item() == first   # same weight: no advance
    for _ in range(300):                      # 1 iteration per weight update (training step)
        w.mul_(1.0)                           # an in-place update, as an optimizer step makes
        est = state.sigma("w", weight_2d(w), n_iters=1).item()
    assert est == pytest.approx(exact, rel=1e-3)
    kept = state.state["w"]
    w.mul_(1.0)
    assert state.sigma("w", weight_2d(w), update=False).item() == est  # read only ...
    assert state.state["w"] is kept                                     # ... nothing kept
    assert first <= exact + 1e-4              # u^T W v never exceeds sigma_max
    assert abs(first - exact) > abs(est - exact)


def test_spectral_loss_sums_conv_and_linear_norms_with_gradient() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 5, 3), nn.BatchNorm2d(5), nn.Flatten(), nn.Linear(20, 3))
    exact = sum(torch.linalg.matrix_norm(weight_2d(m.weight), ord=2).item()
                for m in (model[0], model[3]))
    for _ in range(200):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.0)                   # a weight update between the steps
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


def test_nvae_module_advances_the_power_iteration_once_per_weight_update() -> None:
    """The project's NVAEModule: two losses in one training step (an adversarial trick) and an
    evaluation leave the estimates where ONE training loss per optimizer step puts them."""
    from kexue.models.nvae import NVAEModule
    from tests.models.nvae._helpers import binary_digits, tiny_nvae_cfg

    torch.manual_seed(0)
    module = NVAEModule(tiny_nvae_cfg()).train()
    x = binary_digits(4)
    opt = torch.optim.SGD(module.parameters(), lr=1e-3)

    def snapshot() -> dict:
        return {k: u.clone() for k, (u, _) in module.model._power_iteration.state.items()}

    module.compute_loss({"x": x})[0].backward()
    first = snapshot()
    module.compute_loss({"x": x})                          # the same step again: no advance
    assert all(torch.equal(first[k], u) for k, u in snapshot().items())
    opt.step()
    module.eval()
    module.compute_loss({"x": x})                          # evaluation: no advance
    assert all(torch.equal(first[k], u) for k, u in snapshot().items())
    module.train()
    module.compute_loss({"x": x})                          # next step: one iteration each
    moved = snapshot()
    ref = {}
    for name, m in module.model.named_modules():           # by hand: one power step from first
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            wd = weight_2d(m.weight.detach())
            v = torch.nn.functional.normalize(wd.t() @ first[name], dim=0, eps=1e-12)
            ref[name] = torch.nn.functional.normalize(wd @ v, dim=0, eps=1e-12)
    assert ref.keys() == moved.keys()
    for name in ref:
        torch.testing.assert_close(moved[name], ref[name])
    assert any(not torch.equal(first[k], moved[k]) for k in first)
