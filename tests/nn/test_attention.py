"""MultiHeadAttention (Su's Attention(8, 16) with key mask and mask_right) vs references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kexue.nn import MultiHeadAttention, lengths_to_mask


def pad_with_junk(seqs: list[torch.Tensor], length: int, gen: torch.Generator) -> torch.Tensor:
    out = []
    for s in seqs:
        junk = 100 * torch.randn((length - s.shape[0], *s.shape[1:]), generator=gen)
        out.append(torch.cat([s, junk], 0))
    return torch.stack(out)


def reference(attn: MultiHeadAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              causal: bool = False) -> torch.Tensor:
    """One unpadded example (Lq, Dq), (Lk, Dk), (Lk, Dv), written head by head with plain loops."""
    H, d = attn.heads, attn.head_dim
    Q, K, V = attn.q_proj(q), attn.k_proj(k), attn.v_proj(v)
    heads = []
    for h in range(H):
        sl = slice(h * d, (h + 1) * d)
        rows = []
        for i in range(q.shape[0]):
            n_keys = min(i + 1, k.shape[0]) if causal else k.shape[0]
            if n_keys == 0:
                rows.append(torch.zeros(d))
                continue
            s = K[:n_keys, sl] @ Q[i, sl] / math.sqrt(d)
            rows.append(torch.softmax(s, 0) @ V[:n_keys, sl])
        heads.append(torch.stack(rows))
    return attn.out_proj(torch.cat(heads, -1))


@pytest.fixture
def gen() -> torch.Generator:
    torch.manual_seed(0)
    return torch.Generator().manual_seed(3)


def test_shapes_and_defaults():
    a = MultiHeadAttention(10, 12)
    out = a(torch.randn(2, 3, 10), torch.randn(2, 5, 12), torch.randn(2, 5, 12))
    assert out.shape == (2, 3, 128) and a.output_size == 128  # Su's 8 x 16, no output proj
    assert a.q_proj.bias is None  # bias-free projections as in Su's layer
    b = MultiHeadAttention(10, 12, heads=2, head_dim=4, value_dim=7, out_dim=9)
    assert b(torch.randn(2, 3, 10), torch.randn(2, 5, 12), torch.randn(2, 5, 7)).shape == (2, 3, 9)


def test_key_mask_matches_loop_reference_and_extra_padding(gen):
    """Cross attention (EL: Attn(Q, D, D) with the description mask) with junk padding."""
    attn = MultiHeadAttention(6, 5, heads=2, head_dim=4, value_dim=3, out_dim=7)
    q_len, k_len = [4, 2, 3], [3, 5, 1]
    qs = [torch.randn(n, 6, generator=gen) for n in q_len]
    ks = [torch.randn(n, 5, generator=gen) for n in k_len]
    vs = [torch.randn(n, 3, generator=gen) for n in k_len]
    outs = []
    for extra in (0, 7):
        Lq, Lk = max(q_len) + extra, max(k_len) + extra
        out = attn(pad_with_junk(qs, Lq, gen), pad_with_junk(ks, Lk, gen),
                   pad_with_junk(vs, Lk, gen), key_mask=lengths_to_mask(torch.tensor(k_len), Lk))
        outs.append(out)
    with torch.no_grad():
        for b in range(3):
            ref = reference(attn, qs[b], ks[b], vs[b])
            for out in outs:
                torch.testing.assert_close(out[b, : q_len[b]], ref, rtol=1e-5, atol=1e-6)


def test_matches_torch_sdpa(gen):
    """Second implementation: torch's scaled_dot_product_attention on the same projections."""
    attn = MultiHeadAttention(8, 8, heads=4, head_dim=2)
    q, k = torch.randn(2, 5, 8, generator=gen), torch.randn(2, 6, 8, generator=gen)
    key_mask = lengths_to_mask(torch.tensor([6, 4]), 6)

    def split(t):
        return t.view(t.shape[0], t.shape[1], 4, 2).transpose(1, 2)

    with torch.no_grad():
        ref = F.scaled_dot_product_attention(split(attn.q_proj(q)), split(attn.k_proj(k)),
                                             split(attn.v_proj(k)),
                                             attn_mask=key_mask[:, None, None, :])
        ref = ref.transpose(1, 2).reshape(2, 5, 8)
        torch.testing.assert_close(attn(q, k, k, key_mask=key_mask), ref, rtol=1e-5, atol=1e-6)


def test_causal_equals_prefix_reference(gen):
    attn = MultiHeadAttention(4, 4, heads=2, head_dim=3)
    x = torch.randn(2, 6, 4, generator=gen)
    y = torch.randn(2, 6, 4, generator=gen)
    out = attn(x, y, y, causal=True)
    with torch.no_grad():
        for b in range(2):
            torch.testing.assert_close(out[b], reference(attn, x[b], y[b], y[b], causal=True),
                                       rtol=1e-5, atol=1e-6)


def test_causal_output_ignores_future_keys(gen):
    """mask_right: position n must not see keys/values at positions > n."""
    attn = MultiHeadAttention(4, 4, heads=2, head_dim=3)
    q = torch.randn(1, 6, 4, generator=gen)
    kv = torch.randn(1, 6, 4, generator=gen)
    base = attn(q, kv, kv, causal=True)
    for n in range(6):
        changed = kv.clone()
        changed[:, n + 1:] = torch.randn(1, 5 - n, 4, generator=gen) * 10
        out = attn(q, changed, changed, causal=True)
        torch.testing.assert_close(out[:, : n + 1], base[:, : n + 1], rtol=0, atol=1e-6)
        if n < 5:  # non-vacuous: later positions do see the change
            assert not torch.allclose(out[:, n + 1:], base[:, n + 1:])
    shifted = kv.clone()
    shifted[:, 1:] += 1.0  # without causal=True, position 0 does see the future
    assert not torch.allclose(attn(q, shifted, shifted)[:, 0], attn(q, kv, kv)[:, 0])


def test_causal_with_unequal_lengths_and_key_mask(gen):
    """Lq != Lk is allowed: query i attends keys j <= i (and only valid keys)."""
    attn = MultiHeadAttention(4, 4, heads=2, head_dim=3)
    q, kv = torch.randn(1, 3, 4, generator=gen), torch.randn(1, 5, 4, generator=gen)
    out = attn(q, kv, kv, causal=True)
    with torch.no_grad():
        torch.testing.assert_close(out[0], reference(attn, q[0], kv[0], kv[0], causal=True),
                                   rtol=1e-5, atol=1e-6)
    # key 0 masked: query 0 has no attendable key -> zeros; others skip key 0
    key_mask = torch.tensor([[False, True, True, True, True]])
    out = attn(q, kv, kv, key_mask=key_mask, causal=True)
    assert torch.all(out[0, 0] == 0)
    with torch.no_grad():
        ref1 = reference(attn, q[0, 1:2], kv[0, 1:2], kv[0, 1:2])
    torch.testing.assert_close(out[0, 1:2], ref1, rtol=1e-5, atol=1e-6)


def test_fully_masked_keys_give_zeros_and_finite_grads(gen):
    attn = MultiHeadAttention(4, 4, heads=2, head_dim=3)
    q = torch.randn(2, 3, 4, generator=gen, requires_grad=True)
    kv = torch.randn(2, 4, 4, generator=gen, requires_grad=True)
    key_mask = torch.tensor([[True, True, False, False], [False] * 4])
    query_mask = torch.tensor([[True, True, False], [True, True, True]])
    out = attn(q, kv, kv, key_mask=key_mask, query_mask=query_mask)
    assert torch.all(out[1] == 0) and torch.all(out[0, 2] == 0) and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(kv.grad).all()
    assert torch.all(kv.grad[0, 2:] == 0)  # padded keys receive no gradient


def test_bf16_autocast_no_nan(gen):
    attn = MultiHeadAttention(4, 4, heads=2, head_dim=3)
    q, kv = torch.randn(2, 3, 4, generator=gen) * 50, torch.randn(2, 4, 4, generator=gen) * 50
    key_mask = torch.tensor([[True, False, False, False], [False] * 4])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attn(q, kv, kv, key_mask=key_mask, causal=True)
    assert torch.isfinite(out).all() and torch.all(out[1] == 0)


@pytest.mark.gpu
def test_cuda_fp16_autocast_matches_fp32(gen):
    attn = MultiHeadAttention(4, 4, heads=2, head_dim=3).cuda()
    q, kv = torch.randn(2, 3, 4, generator=gen).cuda(), torch.randn(2, 5, 4, generator=gen).cuda()
    key_mask = lengths_to_mask(torch.tensor([5, 0]), 5).cuda()
    ref = attn(q, kv, kv, key_mask=key_mask, causal=True)
    with torch.autocast("cuda", dtype=torch.float16):
        out = attn(q, kv, kv, key_mask=key_mask, causal=True)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, rtol=1e-2, atol=1e-2)
