"""text_classification: same seed = same result, every method sees the same data order, the
probe's perturbation has the stated norm, the paired comparison against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from kexue.config import ConfigError
from kexue.models.textcls import CharClassifier, ClassifierConfig, perturbed_accuracy
from kexue.models.textcls.compare import compare, paired_interval
from kexue.models.textcls.training import train_loader
from kexue.pipelines.text_classification.nodes_ingest import ingest_text
from kexue.pipelines.text_classification.nodes_train import build_vocab, report, train_method

PARAMS = {"cpu_threads": 1,
          "data": {"source": "embedded", "n_train": 240, "n_dev": 80, "n_classes": 3},
          "model": {"encoder": "cnn", "emb_dim": 16, "hidden": 16, "max_len": 24},
          "trainer": {"accelerator": "cpu", "max_epochs": 2},
          "optimizer": {"name": "adam", "lr": 3e-3},
          "experiment": {"seeds": [0, 1], "batch_size": 16, "probe_epsilon": 0.5},
          "methods": {"plain": {"adversarial": {"method": "none"}},
                      "fgm_su": {"adversarial": {"method": "fgm", "mode": "su", "epsilon": 0.5}},
                      "gp": {"adversarial": {"method": "gp", "epsilon": 1.0}}}}


@pytest.fixture(scope="module")
def data():
    train, dev, rejects, rep = ingest_text(None, None, None, None, PARAMS, seed=0)
    return train, dev, build_vocab(train, PARAMS), rep


def test_ingest_counts_and_flags(data):
    train, dev, vocab, rep = data
    assert (rep["train"], rep["dev"], rep["n_classes"]) == (240, 80, 3)
    assert rep["dev_in_train"] == 0 and not dev["in_train"].any()        # generator: no overlap
    assert rep["splits"]["train"]["read"] == 240 and rep["splits"]["train"]["rejected"] == 0



@pytest.mark.parametrize("over, key", [({"n_train": 0}, "n_train=0"), ({"n_dev": -1}, "n_dev=-1"),
                                       ({"n_classes": 1}, "n_classes=1"),
                                       ({"max_train": -5}, "max_train=-5"),
                                       ({"n_classes": 500}, "500 classes")])
def test_ingest_rejects_a_bad_size_naming_the_key(over, key):
    # before validate(): n_train=0 ran on, the others failed deep in numpy / pandas unnamed
    params = {**PARAMS, "data": {**PARAMS["data"], **over}}
    with pytest.raises(ConfigError, match=r"text_classification\.data") as exc:
        ingest_text(None, None, None, None, params, seed=0)
    assert key in str(exc.value)


def test_resumable_is_refused_not_ignored_naming_where_it_was_set(data):
    train, dev, vocab, _ = data
    shared = {**PARAMS, "trainer": {**PARAMS["trainer"], "resumable": True}}
    per_method = {**PARAMS, "methods": {**PARAMS["methods"], "plain": {
        **PARAMS["methods"]["plain"], "trainer": {"resumable": True}}}}
    for params, key in ((shared, "'text_classification.trainer.resumable'"),
                        (per_method, "'text_classification.methods.plain.trainer.resumable'")):
        with pytest.raises(ConfigError, match="resumable: false") as exc:
            train_method(train, dev, vocab, params, "plain")
        assert key in str(exc.value)

def test_same_seed_same_result_and_methods_differ(data):
    train, dev, vocab, _ = data
    a = train_method(train, dev, vocab, PARAMS, "plain")
    b = train_method(train, dev, vocab, PARAMS, "plain")
    cols = ["dev_acc", "dev_macro_f1", "robust_acc", "steps", "final_train_loss"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert a["seed"].tolist() == [0, 1] and (a["steps"] == 30).all()
    for method in ("gp", "fgm_su"):            # the callbacks are really in the loop
        other = train_method(train, dev, vocab, PARAMS, method)
        assert not np.allclose(other["final_train_loss"], a["final_train_loss"]), method


def test_every_method_sees_the_same_data_order():
    """The order depends on (seed, epoch) only, not on anything a method changes."""
    x, y = torch.arange(50).reshape(50, 1), torch.arange(50)
    first = [b["y"].tolist() for b in train_loader(x, y, 8, seed=3)]
    torch.manual_seed(123)                                   # another method's RNG use
    torch.randn(1000)
    again = [b["y"].tolist() for b in train_loader(x, y, 8, seed=3)]
    assert first == again and first != [b["y"].tolist() for b in train_loader(x, y, 8, seed=4)]


def test_probe_perturbation_has_the_stated_norm_and_does_not_help():
    torch.manual_seed(0)
    model = CharClassifier(ClassifierConfig(vocab_size=30, n_classes=3, emb_dim=8, hidden=8,
                                            encoder="cnn", dropout=0.0))
    x = torch.randint(1, 30, (40, 12))
    x[:5, 6:] = 0
    y = torch.randint(0, 3, (40,))
    clean = float((model(x).argmax(-1) == y).float().mean())
    for eps in (0.1, 2.0):
        acc, norm = perturbed_accuracy(model, x, y, eps, batch_size=16)
        assert norm == pytest.approx(eps, rel=1e-5) and acc <= clean + 1 / 40
    assert perturbed_accuracy(model, x, y, 0.0)[0] == pytest.approx(clean)


def test_paired_comparison_against_a_hand_computation():
    diffs = pd.Series([0.01, 0.03, 0.02])
    mean, lo, hi = paired_interval(diffs)
    half = 4.302652729911275 * 0.01 / math.sqrt(3)            # t(0.975, 2 dof) * sd / sqrt(n)
    assert (mean, lo, hi) == pytest.approx((0.02, 0.02 - half, 0.02 + half))
    runs = pd.DataFrame({"method": ["plain"] * 3 + ["fgm"] * 3, "seed": [0, 1, 2] * 2,
                         "dev_acc": [0.50, 0.60, 0.55, 0.51, 0.63, 0.57],
                         "dev_macro_f1": [0.4] * 6, "robust_acc": [0.3] * 6,
                         "seconds_per_epoch": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]})
    m = compare(runs).set_index("method")
    assert m.loc["fgm", "dev_acc_diff"] == pytest.approx(0.02)
    assert m.loc["fgm", "dev_acc_diff_low"] == pytest.approx(0.02 - half)
    assert m.loc["fgm", "dev_acc_std"] == pytest.approx(np.std([0.51, 0.63, 0.57], ddof=1))
    assert m.loc["fgm", "time_ratio"] == pytest.approx(2.0)
    text = report(m.reset_index(), {"source": "embedded", "train": 1, "dev": 1, "n_classes": 2},
                  {"experiment": {"seeds": [0, 1, 2]}}, "r")
    assert "`fgm` is within seed noise" in text and "56.58" in text    # CI [-0.48, +4.48]
    runs.loc[runs["method"] == "fgm", "dev_acc"] = [0.52, 0.621, 0.572]       # +2.0 .. +2.2
    text = report(compare(runs), {"source": "embedded", "train": 1, "dev": 1, "n_classes": 2},
                  {"experiment": {"seeds": [0, 1, 2]}}, "r")
    assert "`fgm` helps on dev accuracy" in text
