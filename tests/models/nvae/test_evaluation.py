"""ELBO / importance-weighted bounds, BN re-estimation and the sampling temperature."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Normal as TNormal
from torch.distributions import kl_divergence

from kexue.models.nvae import NVAE, NVAEOutput, bits_per_dim, elbo, iw_log_likelihood, reestimate_bn
from tests.models.nvae._helpers import binary_digits, tiny_nvae_cfg


class LinearGaussian(nn.Module):
    """z ~ N(0, 1), x | z ~ N(z, s^2): p(x) = N(0, 1 + s^2). q(z|x) = N(a x, b), deliberately
    not the true posterior N(x / (1 + s^2), s / sqrt(1 + s^2))."""

    def __init__(self, s: float = 0.7, a: float = 0.4, b: float = 0.9) -> None:
        super().__init__()
        self.s, self.a, self.b = s, a, b

    def forward(self, x: Tensor) -> NVAEOutput:
        q = TNormal(self.a * x, torch.full_like(x, self.b))
        p = TNormal(torch.zeros_like(x), torch.ones_like(x))
        z = q.sample()
        return NVAEOutput(z, [kl_divergence(q, p).sum(1)], q.log_prob(z).sum(1),
                          p.log_prob(z).sum(1))

    def log_likelihood(self, params: Tensor, x: Tensor) -> Tensor:
        return TNormal(params, self.s).log_prob(x).sum(1)

    def exact(self, x: Tensor) -> Tensor:
        return TNormal(0.0, math.sqrt(1 + self.s ** 2)).log_prob(x).sum(1)


def test_iw_bound_converges_to_exact_marginal_on_linear_gaussian() -> None:
    torch.manual_seed(0)
    model = LinearGaussian()
    x = torch.randn(400, 1) * math.sqrt(1 + 0.7 ** 2)
    exact = model.exact(x).mean().item()
    e = elbo(model, x).mean().item()
    bounds = {k: iw_log_likelihood(model, x, k, chunk=256).mean().item() for k in (1, 10, 1000)}
    assert e < exact - 0.1                           # q is imperfect: a visible gap
    assert bounds[1] == pytest.approx(e, abs=0.15)   # k=1 is the ELBO in expectation
    assert bounds[1] < bounds[10] < bounds[1000] <= exact + 0.01
    assert bounds[1000] == pytest.approx(exact, abs=0.02)


def _trained_tiny_nvae(steps: int = 8) -> tuple[NVAE, Tensor]:
    torch.manual_seed(0)
    model = NVAE(tiny_nvae_cfg()).train()
    x = binary_digits(32)
    opt = torch.optim.Adamax(model.parameters(), lr=1e-2, eps=1e-3)
    for _ in range(steps):
        out = model(x)
        loss = (-model.log_likelihood(out.params, x) + torch.stack(out.kl_per_group).sum(0)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), x


def test_iw_bound_tightens_with_k_on_a_tiny_nvae() -> None:
    model, x = _trained_tiny_nvae()
    x = x[:16]
    torch.manual_seed(1)
    e = torch.stack([elbo(model, x) for _ in range(8)])            # (8, B)
    iw1 = torch.stack([iw_log_likelihood(model, x, 1) for _ in range(8)])
    iw8 = iw_log_likelihood(model, x, 8, chunk=4).mean().item()
    iw64 = iw_log_likelihood(model, x, 64, chunk=16).mean().item()
    # standard error of mean(iw1) - mean(elbo) from the sample-to-sample spread per image
    var = (e - e.mean(0)).var() + (iw1 - iw1.mean(0)).var()
    se = math.sqrt(var.item() / e.numel())
    assert abs(iw1.mean().item() - e.mean().item()) < 4 * se   # k=1 is the ELBO in expectation
    assert iw8 > e.mean().item() + 1.0                          # measured: ~ +7.7 nats
    assert iw64 > iw8                                           # measured: ~ +4.0 nats


def test_bits_per_dim() -> None:
    assert bits_per_dim(784 * math.log(2.0), 784) == pytest.approx(1.0)


def test_reestimate_bn_changes_samples_and_only_decoder_bn_buffers() -> None:
    model, _ = _trained_tiny_nvae(steps=3)
    params = {k: v.clone() for k, v in model.named_parameters()}
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    momenta = {k: m.momentum for k, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    torch.manual_seed(5)
    before = model.sample(8)
    n = reestimate_bn(model, n_batches=3, batch_size=16, temperature=1.0)
    torch.manual_seed(5)
    after = model.sample(8)
    assert not model.training
    assert (after - before).abs().max() > 1e-3
    assert all(torch.equal(v, params[k]) for k, v in model.named_parameters())
    assert {k: m.momentum for k, m in model.named_modules()
            if isinstance(m, nn.BatchNorm2d)} == momenta
    new = dict(model.named_buffers())
    changed = {k for k in buffers if not torch.equal(new[k], buffers[k])}
    assert any(k.startswith(("dec_", "post.")) and k.endswith("running_var") for k in changed)
    assert not any(k.startswith(("stem", "pre.", "enc_")) for k in changed)  # encoder kept
    tracked = [m.num_batches_tracked.item() for k, m in model.named_modules()
               if isinstance(m, nn.BatchNorm2d) and k.startswith("post.")]
    assert tracked and all(t == 3 for t in tracked) and n >= len(tracked)


def test_generation_temperature_scales_prior_sigma() -> None:
    torch.manual_seed(0)
    model = NVAE(tiny_nvae_cfg()).eval()
    with torch.no_grad():
        stds = {}
        for t in (1.0, 0.6):
            _, zs, qs, ps = model.top_down(256, None, t)
            assert all(q is None for q in qs)
            stds[t] = zs[0].std().item()                              # top: N(0, 1.01^2)
            eps = (zs[2] - ps[2].mu) / ps[2].sigma                    # a conditional group
            assert eps.std().item() == pytest.approx(t, rel=0.02)
    assert stds[1.0] == pytest.approx(1.01, rel=0.02)
    assert stds[0.6] == pytest.approx(0.6 * 1.01, rel=0.02)
    images = model.sample(4, temperature=0.7)
    assert images.shape == (4, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
