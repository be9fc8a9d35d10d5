"""Node-level tests of ``tricks``: its subsets of image_ingest's splits, accumulation, report."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from kexue.config import ConfigError
from kexue.data.images.table import load_embedded
from kexue.models.mlp import bundle_to_classifier
from kexue.pipelines.image_ingest.nodes import read_images, split_images
from kexue.pipelines.tricks.nodes import (
    evaluate_runs,
    select_images,
    train_run,
    write_report,
)

DIGITS = {"n_test": 100, "n_train": 200, "cpu_threads": 1}
INGEST = {"source": "digits", "split": {"n_val": 100, "n_test": 300}}
TRAINER = {"max_epochs": 1, "accelerator": "cpu"}
OPTIM = {"name": "adam", "lr": 1e-3}


@pytest.fixture(scope="module")
def ingested() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """image_ingest's nodes on the embedded digits (the tricks pipeline's input)."""
    table, _, report = read_images(None, load_embedded("digits"), None, None, None, None, INGEST)
    train, _, test, report = split_images(table, report, INGEST, seed=0)
    return train, test, report


@pytest.fixture(scope="module")
def split(ingested) -> tuple[pd.DataFrame, pd.DataFrame]:
    return select_images(*ingested, DIGITS, seed=0)


def test_select_takes_stratified_deterministic_subsets_of_the_ingested_splits(ingested, split):
    train_in, test_in, _ = ingested
    train, test = split
    assert (len(train), len(test)) == (200, 100)
    assert list(train.columns) == ["label", *[f"px{i:03d}" for i in range(64)]]
    # subsets of the right splits (rows of image_ingest's train / test), class balance kept
    rows = lambda f: set(map(tuple, f.to_numpy().tolist()))   # noqa: E731
    assert rows(train) <= rows(train_in.drop(columns=["file", "record"]))
    assert rows(test) <= rows(test_in.drop(columns=["file", "record"]))
    assert train["label"].value_counts().max() - train["label"].value_counts().min() <= 2
    again = select_images(*ingested, DIGITS, seed=0)
    pd.testing.assert_frame_equal(again[0], train)
    assert not select_images(*ingested, DIGITS, seed=1)[0].equals(train)
    whole = select_images(*ingested, {**DIGITS, "n_train": 0, "n_test": 0}, seed=0)
    assert (len(whole[0]), len(whole[1])) == (len(train_in), len(test_in))


def test_select_rejects_impossible_sizes_and_the_moved_source_key(ingested):
    with pytest.raises(ConfigError, match=r"tricks\.data\.n_train.*Fix"):
        select_images(*ingested, {**DIGITS, "n_train": 5000}, seed=0)
    with pytest.raises(ConfigError, match=r"image_ingest\.source"):
        select_images(*ingested, {**DIGITS, "source": "digits"}, seed=0)


def _run(split, run, epochs=1, **model):
    train, test = split
    return train_run(train, test, DIGITS, {"hidden": [32], "dropout": 0.0, **model},
                     {**TRAINER, "max_epochs": epochs}, OPTIM, run, seed=3, checkpoints=None,
                     run_name="r")


def test_accumulated_batch1_equals_batch_of_accumulated_size(split):
    """Independent check of the whole path: 20 x batch-1 accumulated == batch 20 (no dropout),
    over two epochs (same init and the same reshuffled sample order in every epoch)."""
    big, hist_big = _run(split, {"batch_size": 20}, epochs=2)
    acc, hist_acc = _run(split, {"batch_size": 1, "trainer": {"accumulate_grad_batches": 20}},
                         epochs=2)
    one, _ = _run(split, {"batch_size": 1})
    assert big["optimizer_steps"] == acc["optimizer_steps"] == 20 and one["optimizer_steps"] == 200
    assert acc["samples_seen"] == 400 and len(hist_acc) == 2
    for key, value in big["state_dict"].items():
        torch.testing.assert_close(acc["state_dict"][key], value, atol=2e-6, rtol=1e-5)
    assert not torch.allclose(one["state_dict"]["net.0.weight"], big["state_dict"]["net.0.weight"])
    assert list(hist_acc.columns) == ["epoch", "optimizer_steps", "train_loss", "train_acc",
                                      "val_loss", "val_acc", "run"]
    assert hist_acc["train_loss"].tolist() == pytest.approx(hist_big["train_loss"].tolist(), rel=1e-4)
    assert bundle_to_classifier(acc).model.net[0].in_features == 64


def test_run_cannot_change_the_shared_epoch_budget(split):
    with pytest.raises(ConfigError, match=r"runs\.r.*max_epochs.*tricks\.trainer"):
        _run(split, {"batch_size": 10, "trainer": {"max_epochs": 3}})
    with pytest.raises(ConfigError, match=r"runs\.r\.optimizer.*name"):
        _run(split, {"batch_size": 10, "optimizer": {"name": "lamb"}})



def test_a_misspelt_shared_trainer_key_is_named_where_it_was_set(split):
    # README: `--params tricks.trainer.max_epoch=2` names params:tricks.trainer, not the run
    train, test = split
    with pytest.raises(ConfigError) as err:
        train_run(train, test, DIGITS, {"hidden": [32]}, {**TRAINER, "max_epoch": 2}, OPTIM,
                  {"batch_size": 10}, seed=3, checkpoints=None, run_name="r")
    assert ("Unknown parameter(s) params:tricks.trainer.max_epoch (did you mean 'max_epochs'?)"
            in str(err.value))

def test_evaluate_recomputes_accuracy_and_checks_declared_runs(split):
    bundle, history = _run(split, {"batch_size": 20})
    metrics, stacked = evaluate_runs(split[1], DIGITS, {"r": {}}, r__model=bundle, r__history=history)
    x = torch.tensor(split[1].drop(columns="label").to_numpy(), dtype=torch.float32) / 255
    y = torch.tensor(split[1]["label"].to_numpy())
    with torch.no_grad():
        expected = (bundle_to_classifier(bundle)(x).argmax(-1) == y).float().mean().item()
    row = metrics.iloc[0]
    assert row["test_acc"] == pytest.approx(expected)
    assert row["test_acc"] == pytest.approx(history["val_acc"].iloc[-1], abs=1e-6)
    assert (row["effective_batch"], row["optimizer_steps"], row["samples_seen"]) == (20, 10, 200)
    assert len(stacked) == 1
    with pytest.raises(ConfigError, match="keep the two in sync"):
        evaluate_runs(split[1], DIGITS, {"r": {}, "extra": {}}, r__model=bundle, r__history=history)


def _metrics(acc1: float, acc_accum: float, acc100: float) -> pd.DataFrame:
    base = dict(accumulate=1, optimizer="adam", lr=1e-3, epochs=2, samples_seen=400,
                best_val_acc=0.9, final_train_loss=0.3, min_train_loss=0.2, wall_seconds=1.0,
                test_loss=0.3, description="")
    return pd.DataFrame([
        {**base, "run": "adam_bs1", "batch_size": 1, "effective_batch": 1, "optimizer_steps": 400,
         "test_acc": acc1},
        {**base, "run": "adam_bs1_accum100", "batch_size": 1, "accumulate": 100,
         "effective_batch": 100, "optimizer_steps": 4, "test_acc": acc_accum},
        {**base, "run": "adam_bs100", "batch_size": 100, "effective_batch": 100,
         "optimizer_steps": 4, "test_acc": acc100},
    ])


@pytest.mark.parametrize("accs, recovered, reproduced", [
    ((0.95, 0.98, 0.981), True, True),     # Su's picture
    ((0.97, 0.97, 0.90), False, False),    # accumulation neither matches nor beats batch 1
])
def test_report_states_the_verdict_from_the_numbers(accs, recovered, reproduced):
    text = write_report(_metrics(*accs), {"data": DIGITS}, seed=42, run_id="2026-01-01T00.00.00.000Z")
    assert "2026-01-01T00.00.00.000Z" in text
    assert ("Accumulation RECOVERS" in text) is recovered
    assert ("does NOT recover" in text) is (not recovered)
    assert ("is reproduced" in text) is reproduced
    assert "98%+" in text and "97%" in text            # Su's reference numbers beside ours
    assert "`adam_bs1_accum100` | 1 | 100 |" in text
    assert "Ingest:" not in text                       # no counts given, no line


def test_report_has_one_ingest_line_with_the_counts():
    ingest = {"files": ["data/01_raw/digits/digits.csv"], "source": "digits", "read": 12,
              "accepted": 9, "rejected": 3, "by_reason": {"field_count": 2, "bad_label": 1}}
    text = write_report(_metrics(0.95, 0.98, 0.981), {"data": DIGITS}, seed=42, run_id="r",
                        ingest=ingest)
    lines = [line for line in text.splitlines() if line.startswith("Ingest")]
    assert lines == ["Ingest (image_ingest): `data/01_raw/digits/digits.csv`: read 12, accepted 9, "
                     "rejected 3 (field_count 2, bad_label 1; see `image_rejects`)."]
    clean = write_report(_metrics(0.95, 0.98, 0.981), {"data": DIGITS}, seed=42, run_id="r",
                         ingest={**ingest, "accepted": 12, "rejected": 0, "by_reason": {}})
    assert "read 12, accepted 12, rejected 0." in clean
