"""Exact accumulation on the project's OWN models (issue: the sample-mean toys hid the defect).

For ``TitleGenModule`` (token-mean CE of two directions) and ``EntityLinkingModule`` (char-mean
start/end BCE + pair-mean matching BCE), ``k`` micro-batches through Lightning + ExactAccumulation
must give the same parameters as plain SGD on the concatenated big batches, whose loss is the
module's own per-batch ``compute_loss`` on the big batch (float64, dropout 0; the windows
include unequal lengths, an unequal last micro-batch and a partial last window). A control shows
that the old sample-count weighting (``accumulation_weighting: samples``) is not exact here.
"""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from kexue.models.entity_linking.batching import LinkingResources, collate
from kexue.models.entity_linking.candidates import AliasMatcher
from kexue.models.entity_linking.config import ModelConfig
from kexue.models.entity_linking.features import EntityFeatureCache
from kexue.models.entity_linking.module import EntityLinkingModule
from kexue.models.entity_linking.vocab import CharVocab
from kexue.models.title_gen.batching import Collate, TitleDataset
from kexue.models.title_gen.config import Seq2SeqConfig
from kexue.models.title_gen.module import TitleGenModule
from kexue.training.config import OptimizerConfig, TrainerConfig
from kexue.training.trainer import build_trainer

LR = 0.5
N, B, K = 7, 2, 3          # micro-batches 2,2,2 | 1 -> a full window and a partial one


def _fit_accumulated(module, examples, collate_fn, weighting: str = "module"):
    cfg = TrainerConfig(max_epochs=1, accumulate_grad_batches=K, accelerator="cpu",
                        precision="64-true", limit_val_batches=0,
                        accumulation_weighting=weighting)
    trainer = build_trainer(cfg)
    trainer.fit(module, DataLoader(examples, batch_size=B, shuffle=False,
                                   collate_fn=collate_fn))
    assert trainer.global_step == 2
    return module


def _reference(module, examples, collate_fn):
    """Plain SGD, one step per window, on the window's concatenated big batch."""
    ref = copy.deepcopy(module).double().train()
    for start in range(0, len(examples), B * K):
        big = collate_fn(examples[start:start + B * K])
        big = {k: v.double() if v.is_floating_point() else v for k, v in big.items()}
        ref.zero_grad()
        loss, _ = ref.compute_loss(big)
        loss.backward()
        with torch.no_grad():
            for p in ref.parameters():
                if p.grad is not None:
                    p -= LR * p.grad
    return ref


def _max_diff(a, b) -> float:
    return max(float((p.double() - q.double()).abs().max())
               for p, q in zip(a.parameters(), b.parameters()))


def _check(make_module, examples, collate_fn) -> tuple[float, float]:
    module = make_module()
    ref = _reference(module, examples, collate_fn)
    exact = _max_diff(_fit_accumulated(module, examples, collate_fn), ref)
    by_samples = _max_diff(_fit_accumulated(make_module(), examples, collate_fn, "samples"), ref)
    return exact, by_samples


# -- title generation ------------------------------------------------------------------------
def _title_examples() -> TitleDataset:
    rng = random.Random(3)
    sources = [[rng.randrange(4, 30) for _ in range(rng.randint(3, 9))] for _ in range(N)]
    titles = [[rng.randrange(4, 30) for _ in range(n)] for n in (1, 6, 2, 5, 3, 1, 4)]
    return TitleDataset(sources, titles)


@pytest.mark.parametrize("directions", ["both", "l2r"])
@pytest.mark.parametrize("cross_attention", [True, False])
def test_title_gen_accumulation_equals_big_batch(directions: str, cross_attention: bool) -> None:
    if directions != "both" and cross_attention:
        pytest.skip("unidirectional training needs cross_attention=False")
    data = _title_examples()
    ds = [data[i] for i in range(len(data))]

    def make():
        torch.manual_seed(0)
        cfg = Seq2SeqConfig(vocab_size=30, emb_dim=8, enc_hidden=6, dec_hidden=8, heads=2,
                            head_dim=4, smln_hidden=6, out_dim=8, dropout=0.0,
                            cross_attention=cross_attention)
        return TitleGenModule(cfg, OptimizerConfig(name="sgd", lr=LR), directions)

    exact, by_samples = _check(make, ds, Collate())
    assert exact <= 1e-6, exact
    assert by_samples > 1e-4, by_samples       # the old sample weighting is off for token means


# -- entity linking ---------------------------------------------------------------------------
TEXTS = ["坐高铁在南京南站下", "南京", "高铁去南京", "在南站坐高铁去南京玩", "南京南站",
         "南京的高铁站很大很大很大", "高铁"]


def _el_examples() -> tuple[list[dict], int]:
    kb = {"南京": ["a", "b"], "南站": ["c"], "高铁": ["d"]}
    descs = {"a": "城市：南京", "b": "歌曲：南京", "c": "车站", "d": "高速铁路"}
    vocab = CharVocab.build([*TEXTS, *descs.values()], min_count=1)
    res = LinkingResources(vocab, EntityFeatureCache(descs, {k: [] for k in descs}), 16)
    matcher = AliasMatcher(kb)
    examples = []
    for i, text in enumerate(TEXTS):
        item = res.text_item(text, matcher)
        start, end = item.spans[i % len(item.spans)]
        ex = res.pair(item, start, end, ["a", "d", "c", "b"][i % 4])
        s1 = np.zeros(len(text), dtype=np.float32)
        s2 = np.zeros(len(text), dtype=np.float32)
        for a, b in item.spans[:2]:
            s1[a], s2[b - 1] = 1.0, 1.0
        ex.update(s1=s1, s2=s2, label=float(i % 2))
        examples.append(ex)
    return examples, len(vocab) + 2


def test_entity_linking_accumulation_equals_big_batch() -> None:
    examples, vocab_size = _el_examples()

    def make():
        torch.manual_seed(0)
        cfg = ModelConfig(char_size=8, hidden_size=4, conv_size=6, dense_size=5, heads=2,
                          head_dim=3, dropout=0.0)
        return EntityLinkingModule(vocab_size, cfg, OptimizerConfig(name="sgd", lr=LR))

    exact, by_samples = _check(make, examples, collate)
    assert exact <= 1e-6, exact
    assert by_samples > 1e-4, by_samples       # chars and pairs differ from samples


def test_entity_linking_loss_counts_match_loss_terms() -> None:
    """loss_counts (used before the forward) counts what loss_terms normalises by."""
    examples, vocab_size = _el_examples()
    module = EntityLinkingModule(vocab_size, ModelConfig(char_size=8, hidden_size=4, conv_size=6,
                                                         dense_size=5, heads=2, head_dim=3))
    batch = collate(examples[:3])
    terms = module.loss_terms(batch)
    counts = module.loss_counts(batch)
    assert float(counts["chars"]) == sum(len(t) for t in TEXTS[:3]) == float(terms.counts["chars"])
    assert float(counts["pairs"]) == 3.0
