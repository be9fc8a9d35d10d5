"""Greedy / beam / bidirectional beam search: beam 1 == greedy, a hand-built toy where the
bidirectional search finds what the L2R beam misses, R2L reversal, and the batched k*k search
against a literal per-example port of Su's ``gen_sent`` (independent second implementation)."""

from __future__ import annotations

import math

import pytest
import torch

from kexue.models.title_gen import beam
from kexue.models.title_gen.config import Seq2SeqConfig
from kexue.models.title_gen.model import Seq2Seq

pytestmark = pytest.mark.usefixtures("one_torch_thread")


S, E = 2, 3      # start / end ids (R2L: 3 starts, 2 ends)
A, B_, C = 4, 5, 6
V = 7


class TableModel:
    """Fake model: next-token distributions looked up by the generated prefix (pads dropped).
    It has only the full-prefix API, so the searches run with ``cache=False`` on it.

    ``l2r[prefix]`` / ``r2l[prefix]`` map a tuple of generated ids (after the start id, in that
    direction's order) to ``{id: prob}``. Unknown prefixes put all mass on the direction's end.
    The distributions ignore the other direction, so averaging over it is the identity.
    """

    def __init__(self, l2r, r2l):
        self.tables = {"l2r": l2r, "r2l": r2l}
        self.calls = []

    def _dist(self, direction, row):
        end = E if direction == "l2r" else S
        key = tuple(int(t) for t in row[1:] if int(t) != 0)
        p = torch.zeros(V)
        for tok, prob in self.tables[direction].get(key, {end: 1.0}).items():
            p[tok] = prob
        return p

    def next_probs(self, enc, y, direction):
        return torch.stack([self._dist(direction, row) for row in y])

    def pair_next_probs(self, enc_pairs, yl, yr):
        N, k, _ = yl.shape
        self.calls.append(enc_pairs["x_max"].shape[0])
        pl = torch.stack([self._dist("l2r", r) for r in yl.reshape(N * k, -1)]).view(N, k, 1, V)
        pr = torch.stack([self._dist("r2l", r) for r in yr.reshape(N * k, -1)]).view(N, 1, k, V)
        return pl.expand(N, k, k, V), pr.expand(N, k, k, V)


TOY_L2R = {(): {A: 0.5, C: 0.3, B_: 0.2}, (A,): {E: 0.9, B_: 0.1}, (C,): {A: 0.4, B_: 0.4, E: 0.2},
           (C, A): {E: 1.0}, (B_,): {E: 0.9, A: 0.1}}
TOY_R2L = {(): {A: 0.9, B_: 0.1}, (A,): {C: 0.9, S: 0.1}, (A, C): {S: 0.95, B_: 0.05},
           (B_,): {S: 0.9, A: 0.1}}


def toy_enc(n=1):
    return {"x_max": torch.zeros(n, 1)}


@pytest.mark.parametrize("k", [1, 2])
def test_bidirectional_search_finds_title_that_l2r_beam_misses(k):
    """Worked example (scores are sums of log p; log .5=-0.693, log .3=-1.204, log .9=-0.105,
    log .4=-0.916, log .95=-0.051).  Target title: "c a" = [C, A].

    L2R beam, k=2: step 1 keeps [a] -0.693 and [c] -1.204 ([b] -1.609 dropped). Step 2
    candidates: [a,END] -0.799 (ended), [a,b] -2.996, [c,a] -2.120, [c,b] -2.120 -> keeps
    [a,END] and [c,a]; the best hypothesis has ended -> returns "a". (k=1/greedy: a, END -> "a".)
    "c a" is never returned: its L2R prefix "c" is only the 2nd choice at step 1.

    Bidirectional, k=2 (toy probabilities ignore the other direction, so the averages over the
    other direction's hypotheses equal the plain distributions):
    step 1: best L2R [a] -0.693 (open), best R2L [a] -0.105 (open) -> continue.
    step 2: best L2R [a,END] -0.799 has ended but -0.799 < best R2L [a,c] -0.211 -> no stop;
            best R2L has not ended -> continue.
    step 3: best R2L [a,c,END] -0.262 has ended and -0.262 >= best L2R -0.799 (frozen) -> stop,
            return it reversed: "c a". The same trace holds for k=1.
    """
    model = TableModel(TOY_L2R, TOY_R2L)
    assert beam.beam_search(model, toy_enc(), "l2r", k, 10, cache=False) == [[A]]
    assert beam.greedy_decode(model, toy_enc(), "l2r", 10, cache=False) == [[A]]
    out, dirs = beam.bidirectional_beam_search(model, toy_enc(), k, 10, cache=False)
    assert out == [[C, A]] and dirs == ["r2l"]
    # one k*k-row forward per step (3 steps), never one call per pair
    assert model.calls == [k * k] * 3


def test_r2l_beam_returns_reading_order_and_strip_reverses():
    model = TableModel(TOY_L2R, TOY_R2L)
    assert beam.beam_search(model, toy_enc(2), "r2l", 2, 10, cache=False) == [[C, A], [C, A]]
    assert beam.greedy_decode(model, toy_enc(), "r2l", 10, cache=False) == [[C, A]]
    assert beam.strip([3, 6, 5, 4, 2, 0], "r2l") == [4, 5, 6]
    assert beam.strip([2, 4, 5, 3, 0], "l2r") == [4, 5]


def test_excluded_ids_are_never_emitted():
    # L2R puts most mass on unk and start, R2L on unk and 3: both must pick the next best
    model = TableModel({(): {1: 0.5, S: 0.3, A: 0.2}}, {(): {1: 0.5, E: 0.3, B_: 0.2}})
    assert beam.greedy_decode(model, toy_enc(), "l2r", 3, cache=False)[0][0] == A
    assert beam.beam_search(model, toy_enc(), "r2l", 2, 3, cache=False)[0][-1] == B_


def test_max_len_returns_higher_scoring_direction():
    model = TableModel({(): {A: 1.0}, (A,): {A: 1.0}, (A, A): {A: 1.0}},
                       {(): {B_: 0.5, C: 0.5}, (B_,): {B_: 1.0}, (C,): {C: 1.0}})
    out, dirs = beam.bidirectional_beam_search(model, toy_enc(), 2, 3, cache=False)
    assert out == [[A, A, A]] and dirs == ["l2r"]


def random_model(cross: bool) -> Seq2Seq:
    torch.manual_seed(7)
    cfg = Seq2SeqConfig(vocab_size=12, emb_dim=8, enc_hidden=6, dec_hidden=8, heads=2, head_dim=4,
                        out_dim=8, cross_attention=cross)
    model = Seq2Seq(cfg).eval()
    with torch.no_grad():
        model.classifier.bias[3] += 1.5   # make END likely so searches stop at different steps
        model.classifier.bias[2] += 1.5
    return model


def sources():
    x = torch.randint(4, 12, (4, 6), generator=torch.Generator().manual_seed(0))
    x[1, 3:] = 0
    x[3, 1:] = 0
    return x


@pytest.mark.parametrize("direction", ["l2r", "r2l"])
def test_beam_one_equals_greedy_on_random_model(direction):
    model = random_model(False)
    enc = model.encode(sources())
    assert beam.beam_search(model, enc, direction, 1, 12) == beam.greedy_decode(model, enc, direction, 12)


def reference_gen_sent(model, x, k, max_len):
    """Literal per-example port of Su's gen_sent (with frozen ended hypotheses), calling the FULL
    teacher-forced forward on each (L2R_i, R2L_j) pair -- independent of pair_next_probs."""
    inf = -math.inf
    yl, yr = [[S]] * k, [[E]] * k
    sl, sr = [0.0] + [inf] * (k - 1), [0.0] + [inf] * (k - 1)
    fl, fr = [False] * k, [False] * k
    excl = {"l2r": (0, 1, S), "r2l": (0, 1, E)}
    for step in range(max_len):
        YL = torch.tensor([yl[i] for i in range(k) for j in range(k)])
        YR = torch.tensor([yr[j] for i in range(k) for j in range(k)])
        with torch.no_grad():
            ll, lr = model(x.repeat(k * k, 1), YL, YR)
        pl = torch.softmax(ll[:, -1], -1).view(k, k, -1).mean(1)
        pr = torch.softmax(lr[:, -1], -1).view(k, k, -1).mean(0)

        def expand(hyps, scores, fin, probs, direction, end):
            cands = []
            for i in range(k):
                if fin[i]:
                    cands.append((scores[i], hyps[i] + [0], True))
                    continue
                logp = torch.log(probs[i] + 1e-6)
                logp[list(excl[direction])] = inf
                for tok in logp.argsort(descending=True)[:k].tolist():
                    cands.append((scores[i] + float(logp[tok]), hyps[i] + [tok], tok == end))
            cands.sort(key=lambda c: -c[0])
            top = cands[:k]
            return [c[1] for c in top], [c[0] for c in top], [c[2] for c in top]

        yl, sl, fl = expand(yl, sl, fl, pl, "l2r", E)
        yr, sr, fr = expand(yr, sr, fr, pr, "r2l", S)
        lb, rb = max(range(k), key=lambda i: sl[i]), max(range(k), key=lambda i: sr[i])
        if fl[lb] and sl[lb] >= sr[rb]:
            return beam.strip(yl[lb], "l2r")
        if fr[rb] and sr[rb] >= sl[lb]:
            return beam.strip(yr[rb], "r2l")
    return beam.strip(yl[lb], "l2r") if sl[lb] >= sr[rb] else beam.strip(yr[rb], "r2l")


@pytest.mark.parametrize("k", [1, 2, 3])
def test_batched_bidirectional_search_matches_per_example_reference(k):
    model = random_model(True)
    x = sources()
    out, _ = beam.bidirectional_beam_search(model, model.encode(x), k, 8)
    for b in range(x.shape[0]):
        xb = x[b:b + 1, : int((x[b] != 0).sum())]
        assert out[b] == reference_gen_sent(model, xb, k, 8), f"example {b}"


def test_joint_greedy_returns_both_directions_with_specials():
    model = random_model(True)
    yl, yr = beam.joint_greedy(model, model.encode(sources()), 6)
    assert yl.shape == yr.shape and bool((yl[:, 0] == S).all()) and bool((yr[:, 0] == E).all())
    for row in yl.tolist():
        if E in row:
            assert all(t == 0 for t in row[row.index(E) + 1:])
