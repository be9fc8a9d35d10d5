"""``softmax_last`` equals ``torch.softmax(dim=-1)`` on both of its code paths."""

from __future__ import annotations

import math

import pytest
import torch

from kexue.nn import softmax_last
from kexue.nn.softmax import SHORT


@pytest.mark.parametrize("cols", [1, 2, 7, SHORT - 1, SHORT, 40])
def test_matches_torch_softmax_with_additive_masks(cols: int) -> None:
    g = torch.Generator().manual_seed(cols)
    x = 30 * torch.randn(5, 3, cols, generator=g)
    if cols > 1:  # additive finfo.min masks, as the cross attention uses for padded steps
        x[:, 1, 1:] = torch.finfo(x.dtype).min
    got, ref = softmax_last(x), torch.softmax(x, dim=-1)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=1e-7, rtol=1e-6)
    assert torch.allclose(got.sum(-1), torch.ones(5, 3), atol=1e-6)


def test_hand_computed_row() -> None:
    x = torch.tensor([[0.0, math.log(3.0)]])  # exp -> 1, 3 -> probabilities 1/4, 3/4
    assert softmax_last(x)[0].tolist() == pytest.approx([0.25, 0.75], abs=1e-7)


def test_input_left_unchanged() -> None:
    x = torch.randn(4, 3)
    before = x.clone()
    softmax_last(x)
    assert torch.equal(x, before)
