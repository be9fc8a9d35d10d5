"""End-to-end: ``kedro run --pipelines corpus_ingest`` in a temporary copy of the project."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kexue.data.corpora import CharVocab, RejectsSchema, TitlePairsSchema


def _project(kedro_project: Path) -> Path:
    # bootstrap_project() requires <project>/src to exist; the package itself is installed
    (kedro_project / "src").mkdir(exist_ok=True)
    return kedro_project


@pytest.mark.slow
def test_default_corpus_e2e(kedro_project: Path, kedro_run):
    root = _project(kedro_project)
    kedro_run(root, ["corpus_ingest"],
              runtime_params={"corpus_ingest": {"default": {"n_pairs": 300}}})
    pairs = pd.read_parquet(root / "data/03_primary/title_pairs.parquet")
    rejects = pd.read_parquet(root / "data/02_intermediate/title_rejects.parquet")
    TitlePairsSchema.validate(pairs)
    RejectsSchema.validate(rejects)
    assert len(pairs) == 300 and rejects.empty
    assert pairs["split"].value_counts().to_dict() == {"train": 240, "dev": 30, "test": 30}
    vocab_json = json.loads((root / "data/05_model_input/title_vocab.json").read_text("utf-8"))
    assert vocab_json["specials"] == {"pad": 0, "unk": 1, "start": 2, "end": 3}
    vocab = CharVocab.from_dict(vocab_json)
    train = pairs[pairs["split"] == "train"]
    assert all(vocab.decode(vocab.encode(t, add_start=True, add_end=True)) == t
               for t in train["target"])
    report = json.loads((root / "data/08_reporting/corpus_ingest_report.json").read_text("utf-8"))
    assert report["corpus"] == "default"
    assert report["counts"] == {"read": 300, "accepted": 300, "rejected": 0}
    assert report["vocab"]["size"] == len(vocab)
    leak = report["leakage"]
    assert leak["cross_split_sources"] == 0
    by_split = {s: set(pairs.loc[pairs["split"] == s, "source"]) for s in ("train", "dev", "test")}
    assert not (by_split["train"] & by_split["test"]) and not (by_split["train"] & by_split["dev"])
    test_titles = pairs.loc[pairs["split"] == "test", "target"]
    recount = test_titles.isin(set(train["target"])).mean()
    assert leak["title_overlap"]["test"] == pytest.approx(recount)


@pytest.mark.slow
def test_csl_corpus_e2e_with_rejects(kedro_project: Path, kedro_run):
    root = _project(kedro_project)
    raw = root / "data/01_raw/csl/train.tsv"
    raw.parent.mkdir(parents=True, exist_ok=True)
    good = [f"to title\t摘要{i}内容很长很长\t标题{i}" for i in range(40)]
    raw.write_text("\n".join([*good[:10], "broken line", *good[10:]]) + "\n", encoding="utf-8")
    kedro_run(root, ["corpus_ingest"],
              runtime_params={"corpus_ingest": {"corpus": "csl", "min_freq": 1}})
    pairs = pd.read_parquet(root / "data/03_primary/title_pairs.parquet")
    rejects = pd.read_parquet(root / "data/02_intermediate/title_rejects.parquet")
    assert len(pairs) == 40 and pairs["target"].iloc[0] == "标题0"
    assert rejects[["line", "record"]].values.tolist() == [[11, "broken line"]]
    assert rejects["file"].iloc[0].endswith("data/01_raw/csl/train.tsv")
    report = json.loads((root / "data/08_reporting/corpus_ingest_report.json").read_text("utf-8"))
    assert report["counts"] == {"read": 41, "accepted": 40, "rejected": 1}
    assert report["rejects_by_reason"] == {"field_count": 1}


@pytest.mark.slow
def test_missing_selected_corpus_fails_fast(kedro_project: Path, kedro_run):
    root = _project(kedro_project)
    with pytest.raises(Exception, match=r"corpus_ingest\.corpus.*data/01_raw/thucnews/\*/\*\.txt"):
        kedro_run(root, ["corpus_ingest"], runtime_params={"corpus_ingest": {"corpus": "thucnews"}})
    assert not (root / "data/03_primary/title_pairs.parquet").exists()
