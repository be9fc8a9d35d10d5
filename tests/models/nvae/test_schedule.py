"""KL warm-up schedule and KL balancing on hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from kexue.models.nvae.schedule import (
    balanced_kl,
    kl_balance_alpha,
    kl_balance_coefficients,
    kl_coefficient,
)


def test_kl_warmup_schedule() -> None:
    t = 10_000                                 # warm-up over 3000 steps, offset 1 step
    assert kl_coefficient(0, t) == 1e-4
    assert kl_coefficient(1, t) == 1e-4        # (1 - 1) / 3000 = 0 -> floor
    assert kl_coefficient(301, t) == pytest.approx(0.1)
    assert kl_coefficient(1501, t) == pytest.approx(0.5)
    assert kl_coefficient(2251, t) - kl_coefficient(1501, t) == pytest.approx(0.25)  # linear
    assert kl_coefficient(3001, t) == 1.0
    assert kl_coefficient(9999, t) == 1.0
    assert kl_coefficient(5, t, warmup_frac=0.0) == 1.0


def test_kl_balance_alpha_square_by_hand() -> None:
    # top scale (s=0) 1 group: 1/1; next scale (s=1) 2 groups: 4/2 = 2 each
    assert torch.allclose(kl_balance_alpha([1, 2]), torch.tensor([1.0, 2.0, 2.0]))
    # 2 scales x 2 groups: 1/2, 1/2, 4/2, 4/2 -> divided by the min 0.5
    assert torch.allclose(kl_balance_alpha([2, 2]), torch.tensor([1.0, 1.0, 4.0, 4.0]))


def test_kl_balance_coefficients_by_hand() -> None:
    alpha = torch.tensor([1.0, 2.0, 2.0])
    kl = torch.tensor([[1.0, 1.0], [2.0, 2.0], [-3.0, 9.0]])  # (G, B): mean |KL| = 1, 2, 6
    raw = [1.01 / 1.0, 2.01 / 2.0, 6.01 / 2.0]                # = 1.01, 1.005, 3.005
    mean = (1.01 + 1.005 + 3.005) / 3.0                       # = 1.673333
    want = torch.tensor([r / mean for r in raw])
    got = kl_balance_coefficients(kl, alpha)
    assert torch.allclose(got, want, atol=1e-6)
    assert got.mean().item() == pytest.approx(1.0)
    # (G,) means give the same coefficients (|.| of a mean here: 1, 2, 3)
    assert torch.allclose(kl_balance_coefficients(torch.tensor([1.0, 2.0, 6.0]), alpha), want)


def test_balanced_kl_no_gradient_through_coefficients_and_off_after_warmup() -> None:
    alpha = torch.tensor([1.0, 2.0])
    kl = [torch.tensor([1.0, 3.0], requires_grad=True), torch.tensor([4.0, 4.0],
                                                                     requires_grad=True)]
    c = kl_balance_coefficients(torch.stack(kl), alpha)       # raw 2.01, 2.005
    out = balanced_kl(kl, beta=0.5, alpha=alpha)
    out.sum().backward()
    assert torch.allclose(kl[0].grad, torch.full((2,), c[0].item()))
    assert torch.allclose(kl[1].grad, torch.full((2,), c[1].item()))
    plain = balanced_kl([k.detach() for k in kl], beta=1.0, alpha=alpha)
    assert torch.allclose(plain, torch.tensor([5.0, 7.0]))
