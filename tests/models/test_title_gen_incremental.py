"""Incremental (cached) decoding == full-prefix decoding, on models trained for a few steps.

The full-prefix path (``cache=False``: ``Seq2Seq.next_probs`` / ``pair_next_probs`` re-run the
decoder LSTMs over the whole prefix) is the reference; the cached path feeds one token per step.
Both must return the same hypotheses AND the same scores for greedy, beam and bidirectional beam
search. The models are trained (a copy task with titles of 2-6 chars) so that searches end at
different steps and beams reorder, which exercises the cache's select/keep paths.
"""

from __future__ import annotations

import copy

import pytest
import torch

from kexue.models.title_gen import beam, incremental_pair
from kexue.models.title_gen.batching import Collate
from kexue.models.title_gen.config import Seq2SeqConfig
from kexue.models.title_gen.model import Seq2Seq
from kexue.models.title_gen.module import direction_losses

V = 24


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def copy_pairs(n: int, seed: int) -> list[dict]:
    """Source: 6-12 random chars; title: its first 2-6 chars (length = source length // 2)."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        L = int(torch.randint(6, 13, (1,), generator=g))
        x = torch.randint(4, V, (L,), generator=g).tolist()
        items.append({"x": x, "title": x[: L // 2]})
    return items


def train(cross: bool, steps: int = 60) -> Seq2Seq:
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(vocab_size=V, emb_dim=16, enc_hidden=12, dec_hidden=16, heads=2,
                        head_dim=8, smln_hidden=8, out_dim=16, cross_attention=cross)
    model = Seq2Seq(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    collate, data = Collate(), copy_pairs(32 * 8, seed=1)
    for step in range(steps):
        batch = collate(data[(step % 8) * 32:(step % 8 + 1) * 32])
        ce_l, ce_r = direction_losses(model, batch)
        opt.zero_grad()
        (ce_l + ce_r).backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def models() -> dict[str, Seq2Seq]:
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {"baseline": train(False), "bidirectional": train(True)}
    finally:
        torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def enc_inputs() -> torch.Tensor:
    items = copy_pairs(10, seed=99)
    return Collate()(items)["x"]  # (10, Lx), right-padded


def assert_same(cached, full, what: str) -> None:
    titles_c, scores_c = cached[0], cached[-1]
    titles_f, scores_f = full[0], full[-1]
    assert titles_c == titles_f, what
    if len(cached) == 3:  # bidirectional: also the chosen direction
        assert cached[1] == full[1], what
    # float32 sums of ~10 log-probs: the two paths may differ in the last bits (einsum vs bmm)
    assert torch.allclose(torch.tensor(scores_c), torch.tensor(scores_f), rtol=0, atol=1e-5), what


def test_trained_models_decode_varied_lengths(models, enc_inputs):
    """Precondition of the identity test: the searches end at different steps (copy learnt)."""
    enc = models["baseline"].encode(enc_inputs)
    lengths = {len(t) for t in beam.beam_search(models["baseline"], enc, "l2r", 3, 12)}
    assert len(lengths) >= 2


@pytest.mark.parametrize("direction", ["l2r", "r2l"])
def test_greedy_and_beam_cached_equal_full_prefix(models, enc_inputs, direction):
    model = models["baseline"]
    enc = model.encode(enc_inputs)
    assert_same(beam.greedy_decode(model, enc, direction, 12, cache=True, with_scores=True),
                beam.greedy_decode(model, enc, direction, 12, cache=False, with_scores=True),
                f"greedy {direction}")
    for k in (1, 3, 4):
        assert_same(beam.beam_search(model, enc, direction, k, 12, cache=True, with_scores=True),
                    beam.beam_search(model, enc, direction, k, 12, cache=False, with_scores=True),
                    f"beam {direction} k={k}")


@pytest.mark.parametrize("k", [1, 2, 3])
def test_bidirectional_beam_cached_equals_full_prefix(models, enc_inputs, k):
    model = models["bidirectional"]
    enc = model.encode(enc_inputs)
    cached = beam.bidirectional_beam_search(model, enc, k, 12, cache=True, with_scores=True)
    full = beam.bidirectional_beam_search(model, enc, k, 12, cache=False, with_scores=True)
    assert_same(cached, full, f"bidi k={k}")


def test_fused_weights_are_reused_until_a_weight_changes(models, enc_inputs):
    """The pair step's stacked weights are built once per state of the weights: reused by the
    next search, rebuilt after an in-place update (an optimizer step, ``load_state_dict``), so
    a cached search after training still equals the full-prefix one."""
    model = copy.deepcopy(models["bidirectional"])
    enc = model.encode(enc_inputs)
    first = incremental_pair._stacked_weights(model)
    assert incremental_pair._stacked_weights(model) is first
    before = beam.bidirectional_beam_search(model, enc, 3, 12, with_scores=True)
    with torch.no_grad():
        model.decoders["r2l"].out.weight.mul_(1.5)
        model.decoders["l2r"].rnn2.weight_hh_l0.mul_(0.5)
    assert incremental_pair._stacked_weights(model) is not first
    cached = beam.bidirectional_beam_search(model, enc, 3, 12, cache=True, with_scores=True)
    full = beam.bidirectional_beam_search(model, enc, 3, 12, cache=False, with_scores=True)
    assert cached[-1] != before[-1]  # the update matters: stale weights would be caught
    assert_same(cached, full, "bidi after an in-place weight update")


def test_joint_greedy_cached_equals_full_prefix(models, enc_inputs):
    model = models["bidirectional"]
    enc = model.encode(enc_inputs)
    yl_c, yr_c = beam.joint_greedy(model, enc, 12, cache=True)
    yl_f, yr_f = beam.joint_greedy(model, enc, 12, cache=False)
    assert torch.equal(yl_c, yl_f) and torch.equal(yr_c, yr_f)


@pytest.mark.parametrize("name", ["baseline", "bidirectional"])
def test_cached_decoding_embeds_only_the_newest_tokens(models, enc_inputs, name):
    """No re-run of the prefix: each decoding step embeds one token per hypothesis (at most
    2 directions x B x k, never growing), while the full-prefix reference embeds the whole,
    growing prefix (the same hook tells the two apart)."""
    model = models[name]
    enc = model.encode(enc_inputs)
    B, k = enc_inputs.shape[0], 3
    seen: dict[bool, list[int]] = {True: [], False: []}
    mode = {"cache": True}
    hook = model.embedding.register_forward_hook(
        lambda mod, inp, out: seen[mode["cache"]].append(inp[0].numel()))
    try:
        for c in (True, False):
            mode["cache"] = c
            if model.bidirectional:
                beam.bidirectional_beam_search(model, enc, k, 12, cache=c)
            else:
                beam.beam_search(model, enc, "l2r", k, 12, cache=c)
    finally:
        hook.remove()
    per_step = (2 if model.bidirectional else 1) * B * k
    assert len(seen[True]) >= 3 and max(seen[True]) <= per_step
    assert all(a >= b for a, b in zip(seen[True], seen[True][1:]))  # never grows
    assert max(seen[False]) > per_step


@pytest.mark.gpu
def test_cuda_cached_decoding_and_device_ce_match_the_cpu(models, enc_inputs):
    """On the GPU: cached == full-prefix there too, the titles equal the CPU's, and the
    teacher-forced CE is computed on the model's device (same value as on the CPU)."""
    from kexue.models.title_gen.batching import TitleDataset
    from kexue.models.title_gen.module import evaluate_ce
    from kexue.models.title_gen.training import make_loader

    cpu = models["bidirectional"]
    gpu = copy.deepcopy(cpu).cuda().eval()
    x = enc_inputs.cuda()
    cached = beam.bidirectional_beam_search(gpu, gpu.encode(x), 3, 12, with_scores=True)
    full = beam.bidirectional_beam_search(gpu, gpu.encode(x), 3, 12, cache=False, with_scores=True)
    on_cpu = beam.bidirectional_beam_search(cpu, cpu.encode(enc_inputs), 3, 12, with_scores=True)
    assert cached[0] == full[0] == on_cpu[0]
    items = copy_pairs(40, seed=5)
    loader = make_loader(TitleDataset([i["x"] for i in items], [i["title"] for i in items]), 8, False)
    ce_gpu, ce_cpu = evaluate_ce(gpu, loader), evaluate_ce(cpu, loader)
    assert next(gpu.parameters()).is_cuda  # evaluated where it lives, not moved to the CPU
    assert ce_gpu == pytest.approx(ce_cpu, abs=1e-4)
