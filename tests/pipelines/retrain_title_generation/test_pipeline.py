"""retrain_title_generation against a real MLflow registry: the first run promotes, a worse
challenger (lr 0) is never promoted, a warm-started challenger with lr 0 IS the champion (equal
scores: a tie keeps the champion)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import copy_project, run_session
from tests.pipelines.retrain_tricks.test_pipeline import _client
from tests.pipelines.title_generation.test_pipeline import TINY

MODEL = "kexue-title-generator"
PARAMS = {"corpus_ingest": {"default": {"n_pairs": 200}},
          "title_generation": {**TINY, "trainer": {"max_epochs": 2, "limit_val_batches": 1,
                                                   "accelerator": "cpu"}}}


@pytest.mark.slow
def test_title_generator_gate(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = copy_project(tmp_path / "project")
    decision = project / "data/08_reporting/retrain_title_generation_decision.json"
    run_session(project, ["retrain_title_generation"], runtime_params=PARAMS)
    assert json.loads(decision.read_text())["promote"] is True
    client = _client(project)
    for retrain in ({"optimizer": {"lr": 0.0}}, {"warm_start": True, "optimizer": {"lr": 0.0}}):
        run_session(project, ["retrain_title_generation"],
                    runtime_params={**PARAMS, "retrain_title_generation": retrain})
        d = json.loads(decision.read_text())
        assert d["promote"] is False and d["metric"] == "rouge_l"
        assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
        if retrain.get("warm_start"):
            assert d["challenger_score"] == d["champion_score"]       # the champion's weights
        else:
            assert d["challenger_score"] < d["champion_score"]
    # another split seed: test pairs whose source the champion trained on are left out of
    # both scores (counted with plain sets of sources; the whole test split is decoded)
    pairs = project / "data/03_primary/title_pairs.parquet"

    def sources(split: str) -> list[str]:
        t = pd.read_parquet(pairs)
        return t.loc[t["split"] == split, "source"].tolist()

    champion_train = set(sources("train"))
    tg = {**PARAMS["title_generation"],
          "data": {**TINY["data"], "max_eval_examples": 0}}
    run_session(project, ["retrain_title_generation"], runtime_params={
        **PARAMS, "title_generation": tg,
        "corpus_ingest": {**PARAMS["corpus_ingest"], "split": {"seed": 7}}})
    d = json.loads(decision.read_text())
    test, challenger_train = sources("test"), set(sources("train"))
    champion_only = sum(s in champion_train and s not in challenger_train for s in test)
    assert 0 < champion_only < len(test) and d["champion_version_before"] == "1"
    assert d["seen"]["excluded_seen_by_champion_only"] == champion_only
    assert d["seen"]["excluded_seen_by_challenger_only"] == 0     # sources grouped by split
    assert d["n_eval"] == d["seen"]["n_scored"] == len(test) - champion_only


def test_a_champion_is_scored_with_its_own_vocabulary() -> None:
    """Char ids are frequency-ranked, so a later run numbers the same chars differently: the
    champion must decode the sources re-encoded with ITS vocabulary (before, it read the new
    run's ids and was scored on garbage). Reference: the same bundle on a test set encoded with
    its own vocabulary from the start."""
    import torch

    from kexue.data.corpora.vocab import SPECIAL_TOKENS, CharVocab
    from kexue.models.title_gen.batching import encode_texts
    from kexue.models.title_gen.config import DecodeConfig, Seq2SeqConfig
    from kexue.models.title_gen.model import Seq2Seq
    from kexue.models.title_gen.training import to_bundle
    from kexue.pipelines.retrain_title_generation.nodes import _score

    chars = list("abcdefgh")
    old = CharVocab([*SPECIAL_TOKENS, *chars])
    new = CharVocab([*SPECIAL_TOKENS, *reversed(chars)])            # same chars, other ids
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(vocab_size=len(old), emb_dim=8, enc_hidden=6, dec_hidden=8,
                                  heads=2, head_dim=4, smln_hidden=4, out_dim=8,
                                  cross_attention=False)).eval()
    bundle = to_bundle(model, "l2r_baseline", {}, itos=list(old.itos))
    sources = ["abcabc", "hgfe", "dddaaa", "bhbh"]
    targets = ["abc", "hg", "da", "bh"]
    dec = DecodeConfig(beam_size=2, max_len=6, batch_size=4)

    def test_set(vocab: CharVocab) -> dict:
        return {"x": encode_texts(vocab, sources, 16), "source": sources, "target": targets}

    want = _score(bundle, test_set(old), old, dec, 16)             # its own ids from the start
    assert _score(bundle, test_set(new), new, dec, 16) == want      # the new run's ids
    legacy = {k: v for k, v in bundle.items() if k != "vocab"}
    assert _score(legacy, test_set(old), old, dec, 16) == want      # no vocab: the run's, as before
    assert _score(legacy, test_set(new), new, dec, 16) != want      # what the old path scored
    short = CharVocab([*SPECIAL_TOKENS, *chars[:5]])
    nan = _score(legacy, {"x": encode_texts(short, sources, 16), "source": sources,
                          "target": targets}, short, dec, 16)
    assert all(v != v for k, v in nan.items() if k != "n")          # unscoreable: NaN, not garbage
