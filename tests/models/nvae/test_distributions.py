"""Normal (soft clamp, sigma floor, residual form, KL) and the two likelihoods."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kexue.models.nvae.distributions import (
    Normal,
    bernoulli_log_prob,
    logistic_mixture_log_prob,
    logistic_mixture_sample,
    mixture_param_channels,
    residual_normal,
    soft_clamp,
)


def test_soft_clamp_values() -> None:
    x = torch.tensor([0.0, 1.0, -2.0, 5.0, 100.0, -100.0])
    want = 5.0 * np.tanh(x.numpy() / 5.0)   # 0, 0.98688, -1.89974, 3.80797, ~5, ~-5
    assert np.allclose(soft_clamp(x).numpy(), want, atol=1e-6)
    assert soft_clamp(torch.tensor(1.0)).item() == pytest.approx(0.986877, abs=1e-5)
    assert soft_clamp(torch.tensor(100.0)).item() == pytest.approx(5.0, abs=1e-6)


def test_sigma_floor_and_clamped_mean() -> None:
    d = Normal(torch.tensor([0.0, 50.0]), torch.tensor([-1000.0, 0.0]))
    # log_sigma is clamped to -5: sigma = exp(-5) + 0.01; at 0: exp(0) + 0.01 = 1.01
    assert d.sigma[0].item() == pytest.approx(math.exp(-5.0) + 0.01, rel=1e-5)
    assert d.sigma[1].item() == pytest.approx(1.01, rel=1e-6)
    assert d.mu[1].item() == pytest.approx(5.0 * math.tanh(10.0), rel=1e-6)


def _np_normal(mu: np.ndarray, log_sig: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return 5 * np.tanh(mu / 5), np.exp(5 * np.tanh(log_sig / 5)) + 0.01


def test_residual_kl_matches_hand_closed_form_and_monte_carlo() -> None:
    g = np.random.default_rng(0)
    mu_p, ls_p, dmu, dls = (g.normal(size=6) * s for s in (1.0, 0.5, 0.8, 0.4))
    t = [torch.tensor(a, dtype=torch.float64) for a in (mu_p, ls_p, dmu, dls)]
    q = residual_normal(*t)
    p = Normal(t[0], t[1])
    mq, sq = _np_normal(mu_p + dmu, ls_p + dls)       # residual: raw params add up
    mp, sp = _np_normal(mu_p, ls_p)
    hand = np.log(sp / sq) + (sq ** 2 + (mq - mp) ** 2) / (2 * sp ** 2) - 0.5
    kl = q.kl(p).numpy()
    assert np.allclose(kl, hand, rtol=1e-10)
    # the paper's form 0.5 (dmu^2/sigma^2 + r^2 - log r^2 - 1)
    r = sq / sp
    assert np.allclose(kl, 0.5 * ((mq - mp) ** 2 / sp ** 2 + r ** 2 - np.log(r ** 2) - 1))
    # Monte Carlo: E_q[log q - log p] within 5 standard errors
    torch.manual_seed(0)
    z = q.mu + q.sigma * torch.randn(200_000, 6, dtype=torch.float64)
    diff = (q.log_prob(z) - p.log_prob(z)).numpy()
    se = diff.std(0) / math.sqrt(len(diff))
    assert np.all(np.abs(diff.mean(0) - hand) < 5 * se + 1e-6)


def test_sample_temperature_scales_sigma() -> None:
    torch.manual_seed(0)
    d = Normal(torch.full((100_000,), 0.3), torch.full((100_000,), math.log(2.0)))
    sigma = 2.0 + 0.01
    for t in (1.0, 0.5):
        z = d.sample(t)
        assert z.mean().item() == pytest.approx(0.3, abs=0.03)
        assert z.std().item() == pytest.approx(t * sigma, rel=0.01)


def test_bernoulli_log_prob_by_hand() -> None:
    logits = torch.tensor([[[[0.0, 2.0]]]])
    x = torch.tensor([[[[1.0, 0.0]]]])
    want = math.log(0.5) + math.log(1 - 1 / (1 + math.exp(-2.0)))
    assert bernoulli_log_prob(logits, x).item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize(("channels", "bins"), [(1, 256), (3, 8)])
def test_logistic_mixture_sums_to_one_over_all_levels(channels: int, bins: int) -> None:
    """Summed over every image of the discrete grid (256 levels for one channel; 8^3 RGB
    colours with ``bins=8`` to keep the grid small), the mixture's probabilities add up to 1."""
    torch.manual_seed(0)
    n_mix = 3
    assert mixture_param_channels(3, 10) == 100
    params = torch.randn(1, mixture_param_channels(channels, n_mix), 1, 1)
    levels = torch.arange(bins, dtype=torch.float32) / (bins - 1)
    grid = torch.cartesian_prod(*[levels] * channels).reshape(-1, channels, 1, 1)
    lp = logistic_mixture_log_prob(params.expand(len(grid), -1, -1, -1), grid, n_mix, bins=bins)
    assert torch.logsumexp(lp, 0).exp().item() == pytest.approx(1.0, abs=1e-4)
    s = logistic_mixture_sample(params.expand(500, -1, 4, 4), channels, n_mix)
    assert s.shape == (500, channels, 4, 4) and s.min() >= 0 and s.max() <= 1


def test_single_logistic_matches_hand_cdf() -> None:
    # one component, one channel: p(x=k/255) = sigmoid((x'+1/255-m)/s) - sigmoid((x'-1/255-m)/s)
    m, log_s = 0.1, math.log(0.2)
    params = torch.tensor([0.0, m, log_s]).reshape(1, 3, 1, 1)
    k = 140
    x = torch.full((1, 1, 1, 1), k / 255.0)
    xs = 2 * k / 255.0 - 1

    def sig(v: float) -> float:
        return 1 / (1 + math.exp(-v))

    want = math.log(sig((xs + 1 / 255 - m) / 0.2) - sig((xs - 1 / 255 - m) / 0.2))
    assert logistic_mixture_log_prob(params, x, 1).item() == pytest.approx(want, rel=1e-4)
