"""Seq2Seq (baseline and bidirectional): shapes, mask invariance, batching and targets."""

from __future__ import annotations

import pytest
import torch

from kexue.data.corpora.vocab import CharVocab
from kexue.models.title_gen.batching import Collate, TitleDataset, l2r_target, pad_rows, r2l_target
from kexue.models.title_gen.config import Seq2SeqConfig
from kexue.models.title_gen.model import Seq2Seq
from kexue.models.title_gen.module import TitleGenModule

pytestmark = pytest.mark.usefixtures("one_torch_thread")


V = 17


def small(cross: bool, copy_prior: bool = True) -> Seq2Seq:
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(vocab_size=V, emb_dim=8, enc_hidden=6, dec_hidden=10, heads=2, head_dim=4,
                        smln_hidden=5, out_dim=9, cross_attention=cross, copy_prior=copy_prior)
    model = Seq2Seq(cfg).eval()
    # SMLN's last layers are zero-initialised: randomise them so the conditioning path is tested
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "prior" in name:
                p.normal_(0, 0.3)
    return model


def batch(B: int = 3, Lx: int = 7, T: int = 5) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(4, V, (B, Lx), generator=g)
    x[1, 4:] = 0
    x[2, 2:] = 0
    yl = torch.randint(4, V, (B, T), generator=g)
    yl[:, 0] = 2
    yl[1, 3:] = 0
    yr = torch.randint(4, V, (B, T), generator=g)
    yr[:, 0] = 3
    yr[1, 3:] = 0
    return x, yl, yr


@pytest.mark.parametrize("cross", [False, True])
def test_encoder_is_invariant_to_extra_junk_padding(cross):
    model = small(cross)
    x, _, _ = batch()
    mask = x != 0
    enc = model.encode(x, mask)
    junk = torch.cat([x.masked_fill(~mask, 5), torch.randint(4, V, (3, 4))], dim=1)  # junk ids
    mask2 = torch.cat([mask, torch.zeros(3, 4, dtype=torch.bool)], dim=1)
    enc2 = model.encode(junk, mask2)
    torch.testing.assert_close(enc2["x"][:, :7][mask], enc["x"][mask])
    assert torch.all(enc2["x"][:, 7:] == 0)
    torch.testing.assert_close(enc2["x_max"], enc["x_max"])
    torch.testing.assert_close(enc2["prior"], enc["prior"])


@pytest.mark.parametrize("cross", [False, True])
def test_both_decoders_are_invariant_to_extra_padding_and_junk(cross):
    model = small(cross)
    x, yl, yr = batch()
    ll, lr = model(x, yl, yr)
    valid = yl != 0
    # longer source (zeros) and targets padded further with JUNK token ids (not pad)
    x2 = torch.cat([x, torch.zeros(3, 5, dtype=torch.long)], 1)
    yl2 = torch.cat([yl.masked_fill(~valid, 7), torch.randint(4, V, (3, 3))], 1)
    yr2 = torch.cat([yr.masked_fill(~valid, 9), torch.randint(4, V, (3, 3))], 1)
    ll2, lr2 = model(x2, yl2, yr2)
    torch.testing.assert_close(ll2[:, :5][valid], ll[valid])
    torch.testing.assert_close(lr2[:, :5][valid], lr[valid])


def test_cross_attention_is_causal_mask_right():
    """L2R position n may read R2L positions <= n only: changing R2L token m changes L2R logits
    at positions >= m and never before; the baseline ignores the R2L tokens entirely."""
    model = small(True)
    x, yl, yr = batch()
    ll, _ = model(x, yl, yr)
    yr2 = yr.clone()
    yr2[:, 3] = (yr[:, 3] + 1 - 4) % (V - 4) + 4
    ll2, _ = model(x, yl, yr2)
    assert torch.allclose(ll2[:, :3], ll[:, :3])
    assert not torch.allclose(ll2[0, 3:], ll[0, 3:])
    base = small(False)
    torch.testing.assert_close(base(x, yl, yr2)[0], base(x, yl, yr)[0])


def test_copy_prior_is_average_with_bag_of_source_chars():
    model = small(False, copy_prior=True)
    x = torch.tensor([[5, 6, 5, 0]])
    enc = model.encode(x)
    bag = torch.zeros(V)
    bag[[5, 6]] = 1
    expected = torch.exp(model.prior_log_scale) * bag + model.prior_shift
    torch.testing.assert_close(enc["prior"][0], expected.detach())
    feats = torch.randn(1, 2, model.cfg.out_dim)
    torch.testing.assert_close(model.logits(feats, enc["prior"]),
                               (model.classifier(feats) + enc["prior"][:, None]) / 2)


def test_next_probs_matches_teacher_forced_last_position():
    model = small(False)
    x, yl, _ = batch()
    yl = yl[[0, 2]]
    x = x[[0, 2]]
    logits_l, logits_r = model(x, yl, torch.full_like(yl, 3))
    probs = model.next_probs(model.encode(x), yl, "l2r")
    torch.testing.assert_close(probs, torch.softmax(logits_l[:, -1], -1))


def test_pair_next_probs_matches_teacher_forced_pairs():
    """Pair (i, j) of the batched k*k forward == the full model on (L2R_i, R2L_j)."""
    model = small(True)
    x, _, _ = batch()
    x = x[:1]
    k, t = 2, 4
    g = torch.Generator().manual_seed(3)
    yl = torch.randint(4, V, (1, k, t), generator=g)
    yl[..., 0] = 2
    yr = torch.randint(4, V, (1, k, t), generator=g)
    yr[..., 0] = 3
    from kexue.models.title_gen.steppers import repeat_encoded
    pl, pr = model.pair_next_probs(repeat_encoded(model.encode(x), k * k), yl, yr)
    for i in range(k):
        for j in range(k):
            ll, lr = model(x, yl[:, i], yr[:, j])
            torch.testing.assert_close(pl[0, i, j], torch.softmax(ll[0, -1], -1))
            torch.testing.assert_close(pr[0, i, j], torch.softmax(lr[0, -1], -1))


def test_collate_builds_l2r_and_reversed_r2l_targets_with_padding():
    vocab = CharVocab.from_texts(["今天天气好", "好天"])
    titles = [vocab.encode("天气好"), vocab.encode("好")]
    ds = TitleDataset([vocab.encode("今天天气好"), vocab.encode("天")], titles)
    b = Collate()([ds[0], ds[1]])
    tian, qi, hao = vocab.stoi["天"], vocab.stoi["气"], vocab.stoi["好"]
    assert b["x"].shape == (2, 5) and b["x"][1].tolist() == [tian, 0, 0, 0, 0]
    assert b["yl"].tolist() == [[2, tian, qi, hao, 3], [2, hao, 3, 0, 0]]
    assert b["yr"].tolist() == [[3, hao, qi, tian, 2], [3, hao, 2, 0, 0]]
    for row_l, row_r in zip(b["yl"].tolist(), b["yr"].tolist()):
        n = sum(v != 0 for v in row_l)
        assert row_r[:n] == row_l[:n][::-1]  # R2L = reverse of the valid L2R part
    assert l2r_target([7, 8]) == [2, 7, 8, 3] and r2l_target([7, 8]) == [3, 8, 7, 2]


def test_collate_aligns_generated_context_to_target_width():
    ds = TitleDataset([[5], [6]], [[7, 8, 9], [7]], ctx_l2r=[[2, 7, 3], [2, 7, 8, 9, 10, 11, 3]],
                      ctx_r2l=[[3, 9, 8, 7, 2], [3, 2]])
    b = Collate()([ds[0], ds[1]])
    assert b["yl"].shape == b["yl_ctx"].shape == b["yr_ctx"].shape == (2, 5)
    assert b["yl_ctx"].tolist() == [[2, 7, 3, 0, 0], [2, 7, 8, 9, 10]]
    assert b["yr_ctx"].tolist() == [[3, 9, 8, 7, 2], [3, 2, 0, 0, 0]]
    assert pad_rows([[1, 2], []]).tolist() == [[1, 2], [0, 0]]


@pytest.mark.parametrize("cross", [False, True])
def test_module_loss_is_mean_of_direction_ces_and_second_pass_uses_context(cross):
    from kexue.nn import masked_cross_entropy

    module = TitleGenModule(Seq2SeqConfig(vocab_size=V, emb_dim=8, enc_hidden=4, dec_hidden=8,
                                          heads=2, head_dim=4, out_dim=8, cross_attention=cross))
    ds = TitleDataset([[5, 6, 7], [8, 9]], [[10, 11, 12], [13]])
    b = Collate()([ds[0], ds[1]])
    loss, metrics = module.compute_loss(b)
    ll, lr = module.model(b["x"], b["yl"][:, :-1], b["yr"][:, :-1])
    ce_l = masked_cross_entropy(ll, b["yl"][:, 1:], b["yl"][:, 1:] != 0)
    ce_r = masked_cross_entropy(lr, b["yr"][:, 1:], b["yr"][:, 1:] != 0)
    torch.testing.assert_close(loss, (ce_l + ce_r) / 2)
    torch.testing.assert_close(metrics["ce_l2r"], ce_l)
    loss.backward()
    assert module.model.embedding.weight.grad is not None
    ds2 = TitleDataset([[5, 6, 7], [8, 9]], [[10, 11, 12], [13]], [[2, 14, 3], [2, 3]],
                       [[3, 15, 15, 2], [3, 2]])
    loss2, _ = module.compute_loss(Collate()([ds2[0], ds2[1]]))
    assert (not torch.isclose(loss2, loss)) if cross else torch.isclose(loss2, loss)


@pytest.mark.parametrize("direction", ["l2r", "r2l"])
def test_unidirectional_module_loss_is_one_ce_and_other_decoder_gets_no_gradient(direction):
    """directions=l2r/r2l: loss == that direction's CE (independent recomputation) and the
    other decoder's parameters get no gradient, while the encoder and own decoder do."""
    from kexue.nn import masked_cross_entropy

    cfg = Seq2SeqConfig(vocab_size=V, emb_dim=8, enc_hidden=4, dec_hidden=8, heads=2, head_dim=4,
                        out_dim=8, cross_attention=False)
    module = TitleGenModule(cfg, directions=direction)
    ds = TitleDataset([[5, 6, 7], [8, 9]], [[10, 11, 12], [13]])
    b = Collate()([ds[0], ds[1]])
    loss, metrics = module.compute_loss(b)
    ll, lr = module.model(b["x"], b["yl"][:, :-1], b["yr"][:, :-1])
    ce = {"l2r": masked_cross_entropy(ll, b["yl"][:, 1:], b["yl"][:, 1:] != 0),
          "r2l": masked_cross_entropy(lr, b["yr"][:, 1:], b["yr"][:, 1:] != 0)}
    torch.testing.assert_close(loss, ce[direction])
    other = "r2l" if direction == "l2r" else "l2r"
    assert not torch.isclose(loss, (ce["l2r"] + ce["r2l"]) / 2)
    torch.testing.assert_close(metrics[f"ce_{other}"], ce[other].detach())  # still logged
    loss.backward()
    other_grads = [p.grad for p in module.model.decoders[other].parameters()]
    assert other_grads and all(g is None or not g.any() for g in other_grads)
    own = [p.grad for p in module.model.decoders[direction].parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in own)
    enc = [p.grad for p in module.model.encoder.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in enc)


def test_module_directions_are_validated():
    cfg = Seq2SeqConfig(vocab_size=V, emb_dim=8, enc_hidden=4, dec_hidden=8, heads=2, head_dim=4,
                        out_dim=8, cross_attention=False)
    with pytest.raises(ValueError, match="directions='left'.*'both', 'l2r', 'r2l'"):
        TitleGenModule(cfg, directions="left")
    with pytest.raises(ValueError, match="cross_attention=False"):
        TitleGenModule(Seq2SeqConfig(vocab_size=V, cross_attention=True), directions="l2r")
