"""The gate's leakage guard (kexue.ops.seen) against hand-made key sets."""

from __future__ import annotations

import hashlib
import io

import pytest
import torch

from kexue.ops.gate import GateConfig, gate_decision
from kexue.ops.seen import KEYS, NOT_RECORDED, fair_rows, row_keys, subset, train_keys


def test_row_keys_are_blake2b_digests_and_stable() -> None:
    # independent: the digest of b"abc" by hand through hashlib, little-endian signed
    d = hashlib.blake2b(b"abc", digest_size=8).digest()
    assert row_keys(["abc"]).tolist() == [int.from_bytes(d, "little", signed=True)]
    assert row_keys([b"abc"]).tolist() == row_keys(["abc"]).tolist()     # text is UTF-8
    assert len(set(row_keys(["a", "b", "c", "a"]).tolist())) == 3
    assert train_keys(["b", "a", "b"]).tolist() == sorted(row_keys(["a", "b"]).tolist())


def test_only_rows_one_model_trained_on_are_left_out() -> None:
    champion = {KEYS: train_keys(["a", "b", "x"])}
    challenger = {KEYS: train_keys(["b", "c"])}
    keep, info = fair_rows(["a", "b", "c", "d", "e"], champion, challenger)
    # a: champion only (out); b: both (kept: no edge); c: challenger only (out); d, e: neither
    assert keep.tolist() == [False, True, False, True, True]
    assert info == {"n_eval_split": 5, "n_scored": 3, "excluded_seen_by_champion_only": 1,
                    "excluded_seen_by_challenger_only": 1, "champion_train_keys": "recorded"}


def test_no_champion_or_a_bundle_without_keys_leaves_every_row() -> None:
    challenger = {KEYS: train_keys(["a"])}
    for champion, note in ((None, "no champion"), ({"state_dict": {}}, NOT_RECORDED)):
        keep, info = fair_rows(["a", "b"], champion, challenger)
        assert keep.tolist() == [True, True] and info["champion_train_keys"] == note
    with pytest.raises(ValueError, match="no 'train_keys'.*kexue.ops.seen.train_keys"):
        fair_rows(["a"], None, {"state_dict": {}})


def test_nothing_fair_left_is_an_error_that_says_what_to_do() -> None:
    with pytest.raises(ValueError, match="every one of the 2 evaluation rows.*Fix: restore"):
        fair_rows(["a", "b"], {KEYS: train_keys(["a", "b"])}, {KEYS: train_keys(["z"])})


def test_keys_survive_a_weights_only_bundle_round_trip() -> None:
    buf = io.BytesIO()
    torch.save({"state_dict": {}, KEYS: train_keys(["a", "b"])}, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=True)[KEYS]
    assert back.dtype == torch.int64 and torch.equal(back, train_keys(["a", "b"]))


def test_subset_keeps_rows_of_lists_and_tensors() -> None:
    rows = {"source": ["s0", "s1", "s2"], "x": torch.tensor([[0], [1], [2]])}
    out = subset(rows, torch.tensor([True, False, True]))
    assert out["source"] == ["s0", "s2"] and out["x"].tolist() == [[0], [2]]


def test_gate_report_states_the_rows_left_out_and_the_direction_in_force() -> None:
    scores = {"challenger": {"acc": 0.9}, "champion": {"acc": 0.8}, "champion_version": "1",
              "n_eval": 3, "eval_split": "test",
              "seen": {"n_eval_split": 5, "n_scored": 3, "excluded_seen_by_champion_only": 2,
                       "excluded_seen_by_challenger_only": 0, "champion_train_keys": "recorded"}}
    _, record, report = gate_decision(scores, {}, GateConfig(metric="acc"), "x", "run")
    assert record["seen"]["n_scored"] == 3
    assert "Scored on 3 of the split's 5 rows: 2 left out as trained on by the champion" in report
    assert "(higher is better" in report          # inferred from the name, not the None setting
    _, _, report = gate_decision({**scores, "challenger": {"loss": 0.1},
                                  "champion": {"loss": 0.2}}, {}, GateConfig(metric="loss"),
                                 "x", "run")
    assert "(lower is better" in report


@pytest.mark.parametrize("family, gate, match", [
    ("retrain_entity_linking", {"metric": "F1"}, r"retrain_entity_linking\.gate\.metric.*'f1'"),
    ("retrain_entity_linking", {"margn": 0.1}, r"margn"),
    ("retrain_title_generation", {"metric": "rouge-l"}, r"title_generation\.gate\.metric.*rouge_l"),
    ("retrain_tricks", {"metric": "accuracy"}, r"retrain_tricks\.gate\.metric.*'acc'"),
])
def test_a_wrong_gate_fails_before_the_challenger_trains(family: str, gate: dict,
                                                         match: str) -> None:
    """Before, the entity-linking and title gates were read after the fit and decode."""
    import importlib

    from kexue.config import ConfigError

    nodes = importlib.import_module(f"kexue.pipelines.{family}.nodes")
    retrain = {"gate": gate}
    with pytest.raises(ConfigError, match=match):
        if family == "retrain_entity_linking":
            nodes.train_challenger(None, None, None, None, None, None, {}, retrain, 0)
        elif family == "retrain_title_generation":
            nodes.train_challenger({}, {}, {}, {}, retrain, 0)
        else:
            import pandas as pd

            nodes.train_challenger(pd.DataFrame({"px0": [0], "label": [0]}), None, {}, {}, {},
                                   {}, {}, retrain, 0, "run")


def test_a_challenger_that_is_the_champion_is_not_decided_on() -> None:
    """The base DAG's evaluate + gate task retried after its promotion scores the challenger
    against itself: a tie, reported as REJECTED for the serving model."""
    from kexue.ops.gate import same_bundle

    bundle = {"state_dict": {"w": torch.ones(2)}, KEYS: train_keys(["a"])}
    assert same_bundle(bundle, {"state_dict": {"w": torch.ones(2)}, KEYS: train_keys(["a"])})
    assert not same_bundle(bundle, {"state_dict": {"w": torch.zeros(2)}, KEYS: train_keys(["a"])})
    assert not same_bundle(bundle, None)
    scores = {"challenger": {"acc": 0.9}, "champion": {"acc": 0.9}, "champion_version": "5",
              "n_eval": 3, "eval_split": "test", "same_as_champion": True}
    decision, record, report = gate_decision(scores, bundle, GateConfig(metric="acc"), "x", "r")
    assert decision["promote"] is False and record["outcome"] == "unchanged"
    assert decision["tags"]["gate_decision"] == "unchanged" and "**Decision: UNCHANGED**" in report
    assert "the challenger is the champion v5 itself" in record["reason"] in report
