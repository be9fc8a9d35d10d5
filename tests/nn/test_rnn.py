"""AlignedBiLSTM: equals per-sequence LSTMs, independent of padding (post 6810)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kexue.nn import AlignedBiLSTM, lengths_to_mask, reverse_sequence

LENGTHS = [5, 1, 0, 3, 7]


def pad_with_junk(seqs: list[torch.Tensor], length: int, gen: torch.Generator) -> torch.Tensor:
    out = []
    for s in seqs:
        junk = 100 * torch.randn((length - s.shape[0], *s.shape[1:]), generator=gen)
        out.append(torch.cat([s, junk], 0))
    return torch.stack(out)


@pytest.fixture
def setup():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = AlignedBiLSTM(input_size=4, hidden_size=3).eval()
    seqs = [torch.randn(n, 4, generator=gen) for n in LENGTHS]
    return model, seqs, gen


def test_output_shape_and_zero_padding(setup):
    model, seqs, gen = setup
    x = pad_with_junk(seqs, 9, gen)
    mask = lengths_to_mask(torch.tensor(LENGTHS), 9)
    out = model(x, mask)
    assert out.shape == (5, 9, 6) and model.output_size == 6
    assert torch.all(out[~mask] == 0)
    assert torch.all(out[2] == 0)  # length-0 row: zeros, no crash


def test_equals_per_sequence_bidirectional_lstm(setup):
    """Reference 1: the same nn.LSTM on each unpadded sequence alone (batch of 1, no packing)."""
    model, seqs, gen = setup
    x = pad_with_junk(seqs, 7, gen)
    out = model(x, lengths_to_mask(torch.tensor(LENGTHS), 7))
    for b, s in enumerate(seqs):
        if len(s) == 0:
            continue
        ref, _ = model.lstm(s.unsqueeze(0))  # (1, l, 6)
        torch.testing.assert_close(out[b, : len(s)], ref[0], rtol=1e-5, atol=1e-6)


def test_equals_reverse_sequence_with_two_unidirectional_lstms(setup):
    """Reference 2 (Su's OurBidirectional): forward LSTM on the padded batch; backward LSTM on the
    prefix-reversed batch, reversed back; concat; times mask. Weights copied from model.lstm."""
    model, seqs, gen = setup
    x = pad_with_junk(seqs, 7, gen)
    lengths = torch.tensor(LENGTHS)
    mask = lengths_to_mask(lengths, 7)
    fwd, bwd = nn.LSTM(4, 3, batch_first=True), nn.LSTM(4, 3, batch_first=True)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(fwd, name).copy_(getattr(model.lstm, name))
            getattr(bwd, name).copy_(getattr(model.lstm, name + "_reverse"))
        h_f, _ = fwd(x)
        h_b, _ = bwd(reverse_sequence(x, lengths))
        ref = torch.cat([h_f, reverse_sequence(h_b, lengths)], -1) * mask.unsqueeze(-1)
        out = model(x, mask)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_invariant_to_extra_junk_padding_two_layers():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2)
    model = AlignedBiLSTM(4, 5, num_layers=2, dropout=0.3).eval()
    seqs = [torch.randn(n, 4, generator=gen) for n in LENGTHS]
    lengths = torch.tensor(LENGTHS)
    out_short = model(pad_with_junk(seqs, 7, gen), lengths_to_mask(lengths, 7))
    out_long = model(pad_with_junk(seqs, 14, gen), lengths_to_mask(lengths, 14))
    torch.testing.assert_close(out_long[:, :7], out_short, rtol=1e-5, atol=1e-6)
    assert torch.all(out_long[:, 7:] == 0)
    for b, s in enumerate(seqs):  # stacked layers stay aligned too
        if len(s):
            torch.testing.assert_close(out_short[b, : len(s)], model.lstm(s[None])[0][0],
                                       rtol=1e-5, atol=1e-6)


def test_no_gradient_reaches_padding_and_all_empty_batch(setup):
    model, seqs, gen = setup
    x = pad_with_junk(seqs, 8, gen).requires_grad_(True)
    mask = lengths_to_mask(torch.tensor(LENGTHS), 8)
    model(x, mask).pow(2).sum().backward()
    assert torch.all(x.grad[~mask] == 0)
    assert torch.all(x.grad[mask].abs().sum(-1) > 0)
    empty = model(torch.randn(2, 4, 4), torch.zeros(2, 4, dtype=torch.bool))
    assert empty.shape == (2, 4, 6) and torch.all(empty == 0)


def test_rejects_non_prefix_mask(setup):
    model, _, _ = setup
    mask = torch.tensor([[True, False, True]])
    with pytest.raises(ValueError, match="prefix mask"):
        model(torch.randn(1, 3, 4), mask)


@pytest.mark.gpu
def test_cuda_matches_cpu(setup):
    model, seqs, gen = setup
    x = pad_with_junk(seqs, 8, gen)
    mask = lengths_to_mask(torch.tensor(LENGTHS), 8)
    ref = model(x, mask)
    out = model.cuda()(x.cuda(), mask.cuda()).cpu()
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
