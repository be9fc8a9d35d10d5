"""Masked reductions, softmax, reverse_sequence, masked CE vs independent references (post 6810)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kexue.nn import (
    lengths_to_mask,
    masked_cross_entropy,
    masked_max,
    masked_mean,
    masked_softmax,
    reverse_sequence,
)


def pad_with_junk(seqs: list[torch.Tensor], length: int, gen: torch.Generator) -> torch.Tensor:
    """Stack (l_i, ...) tensors into (B, length, ...) with large random junk in the padding."""
    out = []
    for s in seqs:
        junk = 100 * torch.randn((length - s.shape[0], *s.shape[1:]), generator=gen, dtype=s.dtype)
        out.append(torch.cat([s, junk], 0))
    return torch.stack(out)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ---------------------------------------------------------------- lengths_to_mask
def test_lengths_to_mask_matches_python_reference():
    lengths = torch.tensor([3, 0, 5, 1])
    mask = lengths_to_mask(lengths, 6)
    ref = torch.tensor([[t < n for t in range(6)] for n in [3, 0, 5, 1]])
    assert mask.dtype == torch.bool and torch.equal(mask, ref)
    assert lengths_to_mask(lengths).shape == (4, 5)  # default width = max length
    assert lengths_to_mask(torch.tensor([], dtype=torch.long)).shape == (0, 0)


# ---------------------------------------------------------------- masked_mean
def test_masked_mean_su_example():
    """[1, 0, 3, 4, 5] padded to 8: mean is 13/5 = 2.6, not 13/8 = 1.625."""
    x = torch.tensor([[1.0, 0, 3, 4, 5, 0, 0, 0]])
    mask = lengths_to_mask(torch.tensor([5]), 8)
    assert masked_mean(x, mask, dim=1).item() == pytest.approx(2.6)
    assert x.mean().item() == pytest.approx(1.625)  # what the naive mean gives


def test_masked_mean_mask_shapes_equivalent_and_matches_loop(gen):
    lengths = [4, 1, 6]
    seqs = [torch.randn(n, 5, generator=gen) for n in lengths]
    x = pad_with_junk(seqs, 6, gen)  # (B, L, D)
    mask = lengths_to_mask(torch.tensor(lengths), 6)
    ref = torch.stack([s.mean(0) for s in seqs])  # (B, D)
    torch.testing.assert_close(masked_mean(x, mask, dim=1), ref)
    torch.testing.assert_close(masked_mean(x, mask.unsqueeze(-1), dim=1), ref)
    assert masked_mean(x, mask, dim=1, keepdim=True).shape == (3, 1, 5)


def test_masked_mean_all_masked_is_zero_and_ignores_nan_junk():
    x = torch.tensor([[1.0, float("nan"), float("inf")], [float("nan")] * 3])
    mask = torch.tensor([[True, False, False], [False, False, False]])
    out = masked_mean(x, mask, dim=1)
    assert torch.equal(out, torch.tensor([1.0, 0.0]))


def test_masked_mean_gradient_zero_at_padding(gen):
    x = torch.randn(2, 5, 3, generator=gen, requires_grad=True)
    mask = lengths_to_mask(torch.tensor([2, 5]), 5)
    masked_mean(x, mask, dim=1).sum().backward()
    assert torch.all(x.grad[0, 2:] == 0)
    torch.testing.assert_close(x.grad[0, :2], torch.full((2, 3), 0.5))
    torch.testing.assert_close(x.grad[1], torch.full((5, 3), 0.2))


def test_masked_mean_bad_mask_shape_explains():
    with pytest.raises(ValueError, match="broadcast"):
        masked_mean(torch.randn(2, 5, 3), torch.ones(5, 2, dtype=torch.bool), dim=1)


# ---------------------------------------------------------------- masked_max
def test_masked_max_all_negative_row_is_true_max():
    x = torch.tensor([[-3.0, -1.5, -2.0, 0.0, 0.0]])  # zero padding would win a plain max
    mask = lengths_to_mask(torch.tensor([3]), 5)
    assert masked_max(x, mask, dim=1).item() == -1.5
    assert x.max().item() == 0.0


def test_masked_max_matches_loop_and_all_masked_zero(gen):
    lengths = [3, 0, 7]
    seqs = [torch.randn(n, 4, generator=gen) - 5 for n in lengths]
    x = pad_with_junk(seqs, 7, gen)
    mask = lengths_to_mask(torch.tensor(lengths), 7)
    out = masked_max(x, mask, dim=1)
    torch.testing.assert_close(out[0], seqs[0].amax(0))
    torch.testing.assert_close(out[2], seqs[2].amax(0))
    assert torch.equal(out[1], torch.zeros(4))
    ints = torch.tensor([[-5, -2, 9], [-1, 7, 7]])
    int_mask = torch.tensor([[True, True, False], [False, False, False]])
    assert masked_max(ints, int_mask, dim=1).tolist() == [-2, 0]


@pytest.mark.parametrize("keepdim", [False, True])
def test_masked_max_same_for_any_mask_layout(keepdim, gen):
    """A (B, L) mask, its (B, L, 1) form and the mask expanded to x's (B, L, D) give the same
    result and shape; all-masked rows give 0 (checked against a per-row loop)."""
    lengths = [2, 0, 5, 1]
    x = torch.randn(4, 5, 3, generator=gen) - 5
    mask = lengths_to_mask(torch.tensor(lengths), 5)
    expected = torch.stack([x[i, :n].amax(0) if n else torch.zeros(3)
                            for i, n in enumerate(lengths)])
    if keepdim:
        expected = expected.unsqueeze(1)
    for m in (mask, mask.unsqueeze(-1), mask.unsqueeze(-1).expand(4, 5, 3)):
        out = masked_max(x, m, dim=1, keepdim=keepdim)
        assert out.shape == expected.shape
        assert torch.equal(out, expected)
    # reducing the broadcast dim itself: the max over each row's features (0 when masked)
    out = masked_max(x, mask, dim=2)
    assert out.shape == (4, 5)
    assert torch.equal(out, torch.where(mask, x.amax(2), torch.zeros(())))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_masked_max_low_precision_finite(dtype, gen):
    x = (torch.randn(3, 6, generator=gen) * 1000).to(dtype)
    mask = lengths_to_mask(torch.tensor([2, 0, 6]), 6)
    out = masked_max(x, mask, dim=1)
    assert torch.isfinite(out).all()
    assert out[0] == x[0, :2].max() and out[1] == 0 and out[2] == x[2].max()


# ---------------------------------------------------------------- masked_softmax
def test_masked_softmax_equals_softmax_of_unpadded(gen):
    lengths = [5, 2, 8]
    seqs = [torch.randn(n, generator=gen) for n in lengths]
    for width in (8, 15):  # extra padding with junk must not change anything
        x = pad_with_junk(seqs, width, gen)
        mask = lengths_to_mask(torch.tensor(lengths), width)
        p = masked_softmax(x, mask)
        for b, s in enumerate(seqs):
            torch.testing.assert_close(p[b, : len(s)], torch.softmax(s, 0), rtol=0, atol=1e-7)
            assert torch.all(p[b, len(s):] == 0)


def test_masked_softmax_fully_masked_row_is_zero_with_finite_grad():
    x = torch.randn(2, 4, requires_grad=True)
    mask = torch.tensor([[True, True, False, False], [False] * 4])
    p = masked_softmax(x, mask)
    assert torch.equal(p[1], torch.zeros(4))
    (p * torch.arange(4.0)).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.all(x.grad[1] == 0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_masked_softmax_low_precision_no_nan(dtype):
    x = torch.tensor([[3e4, -3e4, 1.0, 6e4], [1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    x = x.clamp(-6e4, 6e4).to(dtype)
    mask = torch.tensor([[True, True, True, False], [False, True, True, False], [False] * 4])
    p = masked_softmax(x, mask)
    assert p.dtype == dtype and torch.isfinite(p).all()
    torch.testing.assert_close(p.float().sum(-1), torch.tensor([1.0, 1.0, 0.0]), atol=1e-2, rtol=0)
    ref = torch.softmax(torch.tensor([2.0, 3.0]), 0)
    torch.testing.assert_close(p[1, 1:3].float(), ref, atol=1e-2, rtol=0)


def test_masked_softmax_requires_explicit_mask_dims():
    with pytest.raises(ValueError, match="unsqueeze"):
        masked_softmax(torch.randn(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))


def test_masked_softmax_attention_shaped_mask(gen):
    scores = torch.randn(2, 3, 4, 5, generator=gen)  # (B, H, Lq, Lk)
    key_mask = lengths_to_mask(torch.tensor([2, 5]), 5)
    p = masked_softmax(scores, key_mask[:, None, None, :])
    torch.testing.assert_close(p[0, ..., :2], torch.softmax(scores[0, ..., :2], -1))
    torch.testing.assert_close(p[1], torch.softmax(scores[1], -1))


# ---------------------------------------------------------------- reverse_sequence
def _reverse_ref(x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    out = x.clone()
    for b, n in enumerate(lengths):
        for t in range(n):
            out[b, t] = x[b, n - 1 - t]
    return out


def test_reverse_sequence_matches_python_reference_and_is_involution(gen):
    lengths = [0, 1, 4, 7, 3]
    x = torch.randn(5, 7, 2, 3, generator=gen)
    out = reverse_sequence(x, torch.tensor(lengths))
    torch.testing.assert_close(out, _reverse_ref(x, lengths), rtol=0, atol=0)
    torch.testing.assert_close(reverse_sequence(out, torch.tensor(lengths)), x, rtol=0, atol=0)
    ids = torch.arange(6).repeat(2, 1)  # integer 2-D input
    assert reverse_sequence(ids, torch.tensor([3, 6])).tolist() == [[2, 1, 0, 3, 4, 5],
                                                                    [5, 4, 3, 2, 1, 0]]


def test_reverse_sequence_rejects_bad_lengths():
    with pytest.raises(ValueError, match="lengths"):
        reverse_sequence(torch.zeros(2, 3), torch.tensor([1, 4]))


# ---------------------------------------------------------------- masked_cross_entropy
def test_masked_cross_entropy_matches_hand_computation(gen):
    logits = torch.randn(2, 4, 6, generator=gen)
    targets = torch.tensor([[1, 5, 0, 99], [2, -7, 3, 3]])  # junk (out of range) at padding
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    terms = []
    for b in range(2):
        for t in range(4):
            if mask[b, t]:
                z = logits[b, t]
                terms.append(math.log(z.exp().sum().item()) - z[targets[b, t]].item())
    ref = sum(terms) / len(terms)
    assert masked_cross_entropy(logits, targets, mask).item() == pytest.approx(ref, rel=1e-5)


def test_masked_cross_entropy_padding_invariant_and_empty(gen):
    lengths = [3, 5]
    logit_seqs = [torch.randn(n, 7, generator=gen) for n in lengths]
    target_seqs = [torch.randint(0, 7, (n,), generator=gen) for n in lengths]
    losses = []
    for width in (5, 12):
        logits = pad_with_junk(logit_seqs, width, gen)
        targets = torch.stack([torch.cat([t, torch.full((width - len(t),), 1000)])
                               for t in target_seqs])
        mask = lengths_to_mask(torch.tensor(lengths), width)
        losses.append(masked_cross_entropy(logits, targets, mask))
    ref = F.cross_entropy(torch.cat(logit_seqs), torch.cat(target_seqs))  # mean over 8 tokens
    torch.testing.assert_close(losses[0], ref)
    torch.testing.assert_close(losses[1], ref)
    empty = masked_cross_entropy(torch.randn(2, 3, 4), torch.zeros(2, 3, dtype=torch.long),
                                 torch.zeros(2, 3, dtype=torch.bool))
    assert empty.item() == 0.0


def test_masked_cross_entropy_fp16_logits_finite():
    logits = (torch.randn(2, 3, 5) * 100).half()
    loss = masked_cross_entropy(logits, torch.zeros(2, 3, dtype=torch.long),
                                lengths_to_mask(torch.tensor([3, 1]), 3))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


# ---------------------------------------------------------------- extra padding invariance
def test_masked_reductions_invariant_to_extra_padding(gen):
    lengths = [2, 6, 4]
    seqs = [torch.randn(n, 3, generator=gen) for n in lengths]
    results = []
    for width in (6, 13):
        x = pad_with_junk(seqs, width, gen)
        mask = lengths_to_mask(torch.tensor(lengths), width)
        results.append((masked_mean(x, mask, 1), masked_max(x, mask, 1)))
    for a, b in zip(results[0], results[1], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_public_api_is_stable():
    """Other pipelines import these names and keyword arguments; keep them stable."""
    import inspect

    import kexue.nn as knn

    assert set(knn.__all__) == {
        "AlignedBiLSTM", "MultiHeadAttention", "SelfModulatedLayerNorm", "lengths_to_mask",
        "masked_cross_entropy", "masked_max", "masked_mean", "masked_softmax", "reverse_sequence",
        "softmax_last"}

    def params(fn):
        return list(inspect.signature(fn).parameters)

    assert params(knn.lengths_to_mask) == ["lengths", "max_len"]
    assert params(knn.masked_mean)[:3] == ["x", "mask", "dim"]
    assert params(knn.masked_softmax) == ["logits", "mask", "dim"]
    assert params(knn.softmax_last) == ["x"]
    assert params(knn.masked_cross_entropy) == ["logits", "targets", "mask", "reduction"]
    assert params(knn.AlignedBiLSTM.__init__)[1:] == ["input_size", "hidden_size", "num_layers",
                                                      "dropout"]
    assert params(knn.MultiHeadAttention.__init__)[1:7] == ["query_dim", "key_dim", "heads",
                                                            "head_dim", "value_dim", "out_dim"]
    assert params(knn.MultiHeadAttention.forward)[1:6] == ["q", "k", "v", "key_mask", "causal"]
    assert params(knn.SelfModulatedLayerNorm.__init__)[1:4] == ["dim", "cond_dim", "hidden"]


def test_masked_cross_entropy_sum_reduction_by_hand() -> None:
    """reduction="sum": the plain sum of per-token CE over valid tokens (hand-computed)."""
    import math

    from kexue.nn import masked_cross_entropy

    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0]]])      # (1, 2, 2)
    targets = torch.tensor([[1, 0]])
    mask = torch.tensor([[True, False]])
    expected = -math.log(3.0 / 4.0)                                    # softmax(0, ln3)[1] = 3/4
    assert float(masked_cross_entropy(logits, targets, mask, "sum")) == pytest.approx(expected)
    full = torch.tensor([[True, True]])
    total = expected + math.log(2.0)
    assert float(masked_cross_entropy(logits, targets, full, "sum")) == pytest.approx(total)
    assert float(masked_cross_entropy(logits, targets, full)) == pytest.approx(total / 2)
    with pytest.raises(ValueError, match="reduction"):
        masked_cross_entropy(logits, targets, full, "none")
