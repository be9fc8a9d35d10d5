"""Code priors: strict raster-order causality, sampling and the NLL of an untrained prior."""

from __future__ import annotations

import math

import pytest
import torch

from kexue.models.vqvae import PriorConfig, build_prior, nll_per_code, sample
from kexue.models.vqvae.prior import GatedPixelCNNPrior, PixelAttPrior

CFGS = {
    "pixelatt": PriorConfig(kind="pixelatt", d_model=16, layers=2, heads=2),
    "pixelcnn": PriorConfig(kind="pixelcnn", pixelcnn_channels=8, pixelcnn_layers=3),
}


@pytest.mark.parametrize("kind", sorted(CFGS))
def test_logits_at_t_never_see_codes_at_or_after_t(kind: str) -> None:
    torch.manual_seed(0)
    k, h, w = 5, 3, 4
    prior = build_prior(CFGS[kind], k, h, w).double().eval()
    codes = torch.randint(0, k, (2, h, w))
    base = prior(codes).reshape(2, k, h * w)                    # (B, K, T)
    for t in range(h * w):
        changed = codes.clone().reshape(2, h * w)
        changed[:, t] = (changed[:, t] + 1 + torch.randint(0, k - 1, (2,))) % k
        new = prior(changed.reshape(2, h, w)).reshape(2, k, h * w)
        # positions <= t (t itself only sees < t) are bit-for-bit unchanged
        assert torch.equal(new[:, :, : t + 1], base[:, :, : t + 1]), f"leak at t={t}"
        if t < h * w - 1:                                       # and the change is seen later
            assert (new[:, :, t + 1:] - base[:, :, t + 1:]).abs().max() > 1e-9


def test_pixelcnn_sees_the_row_above_on_both_sides() -> None:
    """The vertical stack covers (i-1, j-1..j+1) (no blind spot above-right)."""
    torch.manual_seed(0)
    prior = GatedPixelCNNPrior(4, 3, 3, channels=8, layers=2).double().eval()
    codes = torch.zeros(1, 3, 3, dtype=torch.long)
    base = prior(codes)
    for j in range(3):
        changed = codes.clone()
        changed[0, 0, j] = 1
        assert (prior(changed) - base)[..., 1, 1].abs().max() > 1e-9


def test_build_prior_table_and_config_errors() -> None:
    assert isinstance(build_prior(CFGS["pixelatt"], 4, 2, 2), PixelAttPrior)
    assert isinstance(build_prior(CFGS["pixelcnn"], 4, 2, 2), GatedPixelCNNPrior)
    with pytest.raises(ValueError, match="kind"):
        build_prior(PriorConfig(kind="pixelsnail"), 4, 2, 2)
    with pytest.raises(ValueError, match="kernel"):
        PriorConfig(kernel=4).validate()
    with pytest.raises(ValueError, match="heads"):
        PriorConfig(d_model=10, heads=4).validate()


@pytest.mark.parametrize("kind", sorted(CFGS))
def test_sampling_shapes_range_and_temperature(kind: str) -> None:
    torch.manual_seed(0)
    k, h, w = 6, 3, 3
    prior = build_prior(CFGS[kind], k, h, w)
    codes = sample(prior, 5, h, w, generator=torch.Generator().manual_seed(1))
    assert codes.shape == (5, h, w) and codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < k
    again = sample(prior, 5, h, w, generator=torch.Generator().manual_seed(1))
    assert torch.equal(codes, again)                            # generator controls the draw
    greedy = sample(prior, 2, h, w, temperature=0.0)
    cold = sample(prior, 2, h, w, temperature=1e-6, generator=torch.Generator().manual_seed(2))
    assert torch.equal(greedy, cold)                            # T -> 0 is the argmax
    # greedy codes are the argmax of the prior's own teacher-forced logits
    assert torch.equal(prior.eval()(greedy).argmax(dim=1), greedy)


@pytest.mark.parametrize("kind", sorted(CFGS))
def test_untrained_prior_nll_is_close_to_log_k(kind: str) -> None:
    torch.manual_seed(0)
    k = 64
    prior = build_prior(CFGS[kind], k, 4, 4)
    nll = nll_per_code(prior, torch.randint(0, k, (8, 4, 4)))
    assert abs(nll - math.log(k)) < 0.5
