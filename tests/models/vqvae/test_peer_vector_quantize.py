"""Peer check against lucidrains' vector-quantize-pytorch (plain STE, EMA, no kmeans/rotation).

Both keep the raw EMA cluster size ``N`` and the EMA sum ``m`` (library: ``cluster_size``,
``embed_avg``), start from ``N = 1, m = e`` and set ``e = m / laplace(N) * sum(N)``; both compute
the quantised output with the codebook *before* the step. So indices, quantised vectors, the
commitment loss (library: ``commitment_weight * mse``), the EMA state and the updated codebook
must agree.
"""

from __future__ import annotations

import pytest
import torch

from kexue.models.vqvae import VectorQuantizer

vqp = pytest.importorskip("vector_quantize_pytorch")

K, D = 16, 8


def _pair(seed: int = 0) -> tuple[VectorQuantizer, torch.nn.Module]:
    torch.manual_seed(seed)
    ours = VectorQuantizer(K, D, ema=True, decay=0.99, eps=1e-5, dead_code_steps=0)
    peer = vqp.VectorQuantize(dim=D, codebook_size=K, decay=0.99, commitment_weight=0.25,
                              rotation_trick=False, kmeans_init=False, threshold_ema_dead_code=0,
                              ema_update=True, learnable_codebook=False, accept_image_fmap=True,
                              eps=1e-5)
    codebook = torch.randn(K, D)
    with torch.no_grad():
        ours.embedding.copy_(codebook)
        ours.ema_sum.copy_(codebook)
        ours.ema_count.fill_(1.0)
        peer._codebook.embed.copy_(codebook[None])
        peer._codebook.embed_avg.copy_(codebook[None])
        peer._codebook.cluster_size.fill_(1.0)
    assert bool(peer._codebook.initted)
    return ours, peer


def test_same_indices_and_quantised_vectors_in_eval() -> None:
    ours, peer = _pair()
    ours.eval(), peer.eval()
    z = torch.randn(3, D, 5, 4)
    out = ours(z)
    q, idx, _ = peer(z)
    assert torch.equal(out.indices, idx)
    torch.testing.assert_close(out.z_q, q, atol=1e-6, rtol=1e-6)


def test_same_ema_codebook_after_training_steps() -> None:
    ours, peer = _pair(1)
    ours.train(), peer.train()
    start = ours.embedding.clone()
    for step in range(5):
        z = torch.randn(4, D, 6, 6) * 1.5 + 0.3 * step
        zs = z.clone().requires_grad_()
        out = ours(z)
        assert ours.apply_pending()              # the once-per-step update (the module's hook)
        q, idx, loss = peer(zs)
        assert torch.equal(out.indices, idx)
        torch.testing.assert_close(out.z_q, q, atol=1e-6, rtol=1e-6)
        assert loss.item() == pytest.approx(0.25 * out.commitment_loss.item(), rel=1e-5)
        torch.testing.assert_close(ours.ema_count, peer._codebook.cluster_size[0],
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.ema_sum, peer._codebook.embed_avg[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.embedding, peer._codebook.embed[0], atol=1e-5, rtol=1e-5)
    # the codebook really moved, so the comparison is not vacuous
    assert (ours.embedding - start).abs().max() > 0.1
    # straight-through gradient: the library's output passes d(out)/dz = identity as well
    zs = torch.randn(2, D, 3, 3, requires_grad=True)
    q, _, _ = peer(zs)
    (g,) = torch.autograd.grad((q * 2.0).sum(), zs)
    torch.testing.assert_close(g, torch.full_like(g, 2.0))
