"""VectorQuantizer: straight-through gradient, losses, EMA step and dead-code restarts against
hand computations in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kexue.models.vqvae import VQVAE, VectorQuantizer, VQVAEConfig

CODEBOOK = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype=np.float32)  # (K=3, d=2)
# z as (B=1, d=2, H=2, W=2); positions in raster order: (0.1,0.2) (0.9,-0.1) (0.2,1.5) (0.6,0.1)
Z = np.array([[0.1, 0.2], [0.9, -0.1], [0.2, 1.5], [0.6, 0.1]], dtype=np.float32)  # (N=4, d)


def _as_map(flat: np.ndarray) -> torch.Tensor:
    return torch.tensor(flat).reshape(1, 2, 2, -1).permute(0, 3, 1, 2).contiguous()


def _nearest(z: np.ndarray, e: np.ndarray) -> np.ndarray:
    return np.array([int(np.argmin([np.sum((v - c) ** 2) for c in e])) for v in z])


def _vq(ema: bool, **kw) -> VectorQuantizer:
    vq = VectorQuantizer(3, 2, ema=ema, dead_code_steps=0, **kw)
    vq.embedding.data.copy_(torch.tensor(CODEBOOK))
    if ema:
        vq.ema_sum.copy_(torch.tensor(CODEBOOK))
    return vq


def test_straight_through_gradient_equals_gradient_at_z_q() -> None:
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig(image_size=8, hidden=8, res_hidden=4, code_dim=4,
                              codebook_size=8, ema=False, norm="none", dead_code_steps=0)).eval()
    z = torch.randn(2, 4, 2, 2, requires_grad=True)
    out = model.quantizer(z)

    def f(zq: torch.Tensor) -> torch.Tensor:
        return torch.sin(model.decoder(zq)).pow(2).sum()

    (g_z,) = torch.autograd.grad(f(out.z_q_st), z)
    zq_leaf = out.z_q.detach().requires_grad_()
    (g_ref,) = torch.autograd.grad(f(zq_leaf), zq_leaf)
    torch.testing.assert_close(g_z, g_ref)
    assert g_z.abs().sum() > 0
    torch.testing.assert_close(out.z_q_st, out.z_q)  # forward value is z_q


def test_losses_match_hand_computation_without_ema() -> None:
    vq = _vq(ema=False).train()
    z = _as_map(Z).requires_grad_()
    out = vq(z)
    idx = _nearest(Z, CODEBOOK)
    assert idx.tolist() == [0, 1, 2, 1]
    assert out.indices.flatten().tolist() == idx.tolist()
    zq = CODEBOOK[idx]  # (N, d)
    want = np.mean((Z - zq) ** 2)
    assert out.codebook_loss.item() == pytest.approx(want, rel=1e-6)
    assert out.commitment_loss.item() == pytest.approx(want, rel=1e-6)
    torch.testing.assert_close(out.z_q, _as_map(zq))
    counts = np.bincount(idx, minlength=3)
    assert out.counts.tolist() == counts.tolist()
    p = counts / counts.sum()
    assert out.perplexity.item() == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-6)
    # codebook loss: gradient to the codebook only, d/de_k = sum_assigned -2 (z - e_k) / (N d)
    g_e, g_z = torch.autograd.grad(out.codebook_loss, [vq.embedding, z], allow_unused=True)
    want_ge = np.zeros_like(CODEBOOK)
    for n, k in enumerate(idx):
        want_ge[k] += -2 * (Z[n] - CODEBOOK[k]) / Z.size
    np.testing.assert_allclose(g_e.numpy(), want_ge, rtol=1e-5, atol=1e-7)
    assert g_z is None or torch.all(g_z == 0)
    # commitment loss: gradient to z only, 2 (z - z_q) / (N d)
    g_e2, g_z2 = torch.autograd.grad(out.commitment_loss, [vq.embedding, z], allow_unused=True)
    assert g_e2 is None or torch.all(g_e2 == 0)
    torch.testing.assert_close(g_z2, _as_map(2 * (Z - zq) / Z.size))


def test_ema_codebook_has_no_gradient_and_zero_codebook_loss() -> None:
    vq = _vq(ema=True).eval()
    assert list(vq.parameters()) == []
    out = vq(_as_map(Z).requires_grad_())
    assert out.codebook_loss.item() == 0.0
    assert not out.z_q.requires_grad and not vq.embedding.requires_grad


def test_one_ema_step_matches_numpy_with_laplace_smoothing() -> None:
    decay, eps, k = 0.9, 0.1, 3   # large eps so the smoothing is visible
    z_flat = np.array([[0.1, 0.2], [0.9, -0.1], [0.8, 0.3], [1.2, 0.1]], dtype=np.float32)
    vq = _vq(ema=True, decay=decay, eps=eps).train()
    out = vq(_as_map(z_flat))
    torch.testing.assert_close(vq.ema_count, torch.ones(k))   # the forward changes nothing ...
    vq(_as_map(z_flat + 5.0))                    # ... and only the micro-batch's first counts
    assert vq.apply_pending() and not vq.apply_pending()      # applied once
    idx = _nearest(z_flat, CODEBOOK)
    assert idx.tolist() == [0, 1, 1, 1]          # code 2 unused: its N and m decay
    torch.testing.assert_close(out.z_q, _as_map(CODEBOOK[idx]))  # old codebook used
    n_batch = np.bincount(idx, minlength=k).astype(np.float64)
    sums = np.zeros((k, 2))
    for n, c in enumerate(idx):
        sums[c] += z_flat[n]
    count = decay * np.ones(k) + (1 - decay) * n_batch
    m = decay * CODEBOOK + (1 - decay) * sums
    total = count.sum()
    smoothed = (count + eps) / (total + k * eps) * total
    np.testing.assert_allclose(vq.ema_count.numpy(), count, rtol=1e-6)
    np.testing.assert_allclose(vq.ema_sum.numpy(), m, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(vq.embedding.numpy(), m / smoothed[:, None], rtol=1e-5, atol=1e-7)
    assert not np.allclose(smoothed, count)      # the smoothing changed something
    vq.eval()
    before = vq.embedding.clone()
    vq(_as_map(z_flat))
    assert not vq.apply_pending()
    torch.testing.assert_close(vq.embedding, before)  # no update in eval mode


@pytest.mark.parametrize("ema", [False, True])
def test_dead_code_restart_revives_exactly_the_dead_codes(ema: bool) -> None:
    torch.manual_seed(0)
    k, d, steps = 8, 4, 5
    vq = VectorQuantizer(k, d, ema=ema, decay=0.99, dead_code_steps=steps).train()
    codebook = torch.eye(d).repeat(2, 1) * torch.arange(1, k + 1).float()[:, None] * 10  # (K, d)
    vq.embedding.data.copy_(codebook)
    if ema:
        vq.ema_sum.copy_(codebook)
    z = codebook[torch.tensor([0, 1, 2, 3])].repeat(3, 1)                  # only codes 0..3 used
    z = z + 0.01 * torch.randn_like(z)                                       # (12, d)
    z_map = z.reshape(1, 3, 4, d).permute(0, 3, 1, 2)                        # (1, d, 3, 4)
    vq.steps_unused[torch.tensor([5, 6])] = steps - 1
    vq(z_map)
    assert vq.restarts.item() == 0               # nothing happens before apply_pending
    assert vq.apply_pending()
    assert vq.restarts.item() == 2
    assert vq.steps_unused.tolist() == [0, 0, 0, 0, 1, 0, 0, 1]
    for i in (5, 6):                             # revived from encoder outputs of the batch
        assert torch.isclose(z, vq.embedding[i]).all(dim=1).any()
    torch.testing.assert_close(vq.embedding[[4, 7]], codebook[[4, 7]], atol=0.5, rtol=0.05)
    if ema:
        assert vq.ema_count[[5, 6]].tolist() == [1.0, 1.0]
        torch.testing.assert_close(vq.ema_sum[[5, 6]], vq.embedding[[5, 6]])
    else:
        torch.testing.assert_close(vq.embedding[[0, 1, 2, 3, 4, 7]],
                                   codebook[[0, 1, 2, 3, 4, 7]], atol=0, rtol=0)
    # The direct call returns exactly the ids whose counters reached the threshold.
    vq.steps_unused.zero_()
    vq.steps_unused[torch.tensor([1, 7])] = steps
    assert vq.restart_dead_codes(z).tolist() == [1, 7]
    assert vq.restart_dead_codes(z).tolist() == []
    assert vq.restarts.item() == 4


def test_lookup_and_fp32_distances_under_autocast() -> None:
    vq = _vq(ema=False).eval()
    idx = torch.tensor([[[0, 2], [1, 1]]])
    torch.testing.assert_close(vq.lookup(idx), _as_map(CODEBOOK[idx.flatten().numpy()]))
    z = _as_map(Z).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vq(z)
    assert out.z_q.dtype == torch.bfloat16 and out.commitment_loss.dtype == torch.float32
    assert out.indices.dtype == torch.int64 and out.indices.flatten().tolist() == [0, 1, 2, 1]
