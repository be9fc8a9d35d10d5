"""SelfModulatedLayerNorm vs F.layer_norm and a hand computation (post 6877)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kexue.nn import SelfModulatedLayerNorm, lengths_to_mask


def randomise(smln: SelfModulatedLayerNorm, gen: torch.Generator) -> None:
    with torch.no_grad():
        for p in smln.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def test_zero_init_is_plain_layer_norm():
    torch.manual_seed(0)
    smln = SelfModulatedLayerNorm(dim=6, cond_dim=4, hidden=32)
    x, c = torch.randn(3, 5, 6) * 4 + 2, torch.randn(3, 4)
    out = smln(x, c)
    torch.testing.assert_close(out, F.layer_norm(x, (6,)))
    torch.testing.assert_close(out, nn.LayerNorm(6, elementwise_affine=False)(x))
    assert smln.gamma[1].__class__ is nn.ReLU and smln.gamma[0].out_features == 32


def test_nonzero_modulators_match_hand_computation():
    gen = torch.Generator().manual_seed(1)
    smln = SelfModulatedLayerNorm(dim=5, cond_dim=3, hidden=4, eps=1e-5)
    randomise(smln, gen)
    x, c = torch.randn(2, 7, 5, generator=gen), torch.randn(2, 3, generator=gen)
    out = smln(x, c)
    for b in range(2):
        W1, b1, W2, b2 = (smln.gamma[0].weight, smln.gamma[0].bias, smln.gamma[2].weight,
                          smln.gamma[2].bias)
        gamma = W2 @ torch.clamp(W1 @ c[b] + b1, min=0) + b2
        V1, d1 = smln.beta[0].weight, smln.beta[0].bias
        V2, d2 = smln.beta[2].weight, smln.beta[2].bias
        beta = V2 @ torch.clamp(V1 @ c[b] + d1, min=0) + d2
        for t in range(7):
            v = x[b, t]
            mu = v.sum() / 5
            var = ((v - mu) ** 2).sum() / 5  # biased variance, as in LayerNorm
            ref = (v - mu) / torch.sqrt(var + 1e-5) * (1 + gamma) + beta
            torch.testing.assert_close(out[b, t], ref, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out, F.layer_norm(x, (5,)))


def test_invariant_to_extra_junk_padding_and_mask_zeroes_padding():
    gen = torch.Generator().manual_seed(2)
    smln = SelfModulatedLayerNorm(dim=4, cond_dim=3, hidden=8)
    randomise(smln, gen)
    lengths = [3, 6, 1]
    seqs = [torch.randn(n, 4, generator=gen) for n in lengths]
    cond = torch.randn(3, 3, generator=gen)
    outs = []
    for width in (6, 13):
        x = torch.stack([torch.cat([s, 100 * torch.randn(width - len(s), 4, generator=gen)])
                         for s in seqs])
        mask = lengths_to_mask(torch.tensor(lengths), width)
        out = smln(x, cond, mask=mask)
        assert torch.all(out[~mask] == 0)
        outs.append(out)
    for b, n in enumerate(lengths):
        torch.testing.assert_close(outs[0][b, :n], outs[1][b, :n], rtol=0, atol=1e-6)


def test_modulators_learn_from_zero_init():
    torch.manual_seed(0)
    smln = SelfModulatedLayerNorm(dim=4, cond_dim=3, hidden=8)
    x, c = torch.randn(2, 5, 4), torch.randn(2, 3)
    (smln(x, c) * torch.randn(2, 5, 4)).sum().backward()
    assert smln.gamma[2].weight.grad.abs().sum() > 0
    assert smln.beta[2].bias.grad.abs().sum() > 0
