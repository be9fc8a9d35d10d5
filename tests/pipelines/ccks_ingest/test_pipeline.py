"""ccks_ingest: node-level checks (fail-fast on mixed sources) and end-to-end Kedro runs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kexue.config import ConfigError
from kexue.data.ccks.generate import default_develop_lines, default_kb_lines, default_train_lines
from kexue.io import TextLinesDataset
from kexue.pipelines.ccks_ingest.nodes import check_sources, ingest_kb

SMALL = {"ccks_default": {"n_entities": 400, "n_train_texts": 450, "n_develop_texts": 60}}
TABLES = {
    "ccks_entities": ["subject_id", "subject", "types", "description", "short_objects",
                      "data_json"],
    "ccks_aliases": ["alias", "subject_ids"],
    "ccks_texts": ["text_id", "text", "split", "n_mentions", "n_rejected_mentions"],
    "ccks_mentions": ["text_id", "mention", "offset", "kb_id", "split"],
    "ccks_predict_texts": ["text_id", "text"],
    "ccks_rejects": ["file", "line", "level", "reason", "detail", "record"],
}


def _source(tmp: Path, name: str, present: bool) -> TextLinesDataset:
    path = tmp / name
    if present:
        path.write_text("{}\n", encoding="utf-8")
    return TextLinesDataset(filepath=str(path), fallback="kexue.data.ccks.generate:"
                            "default_kb_lines", fallback_args={"n_entities": 300})


@pytest.mark.parametrize("present", [("kb_data",), ("train.json", "develop.json")])
def test_only_some_official_files_fails_fast(tmp_path: Path, present: tuple[str, ...]) -> None:
    names = ("kb_data", "train.json", "develop.json")
    sources = [_source(tmp_path, n, n in present).load() for n in names]
    with pytest.raises(ValueError, match="Only some official CCKS2019 files") as err:
        check_sources(*sources)
    assert all(n in str(err.value) for n in names) and "Fix:" in str(err.value)


def test_all_or_none_official(tmp_path: Path) -> None:
    names = ("kb_data", "train.json", "develop.json")
    none = check_sources(*[_source(tmp_path / "a", n, False).load() for n in names])
    assert none["source"] == "embedded default"
    (tmp_path / "b").mkdir()
    full = check_sources(*[_source(tmp_path / "b", n, True).load() for n in names])
    assert full["source"] == "official" and full["files"]["kb_data"].endswith("kb_data")


def test_unknown_parameter_fails_fast() -> None:
    src = TextLinesDataset(filepath="/nonexistent", fallback="kexue.data.ccks.generate:"
                           "default_kb_lines", fallback_args={"n_entities": 300}).load()
    with pytest.raises(ConfigError, match="params:ccks_ingest.dev_evry"):
        ingest_kb(src, {"files": {"kb_data": "x"}}, {"dev_evry": 9})


def _project(kedro_project: Path) -> Path:
    (kedro_project / "src").mkdir(exist_ok=True)  # bootstrap_project requires <root>/src
    return kedro_project


def _tables(root: Path) -> dict[str, pd.DataFrame]:
    return {n: pd.read_parquet(root / "data" / "02_intermediate" / f"{n}.parquet") for n in TABLES}


@pytest.mark.slow
def test_e2e_embedded_default(kedro_project: Path, kedro_run) -> None:
    root = _project(kedro_project)
    kedro_run(root, ["ccks_ingest"], runtime_params=SMALL)
    t = _tables(root)
    for name, cols in TABLES.items():
        assert list(t[name].columns[:len(cols)]) == cols, name
    report = json.loads((root / "data/08_reporting/ccks_ingest_report.json").read_text("utf-8"))
    assert report["source"] == "embedded default"
    kb, tr, dv = (report["files"][n] for n in ("kb_data", "train.json", "develop.json"))
    assert (kb["read"], kb["accepted"], kb["rejected"]) == (400, 400, 0) == (len(t["ccks_entities"]), 400, 0)
    assert (tr["read"], dv["read"]) == (450, 60) and report["rejects_rows"] == 0
    assert len(t["ccks_texts"]) == 450 and len(t["ccks_predict_texts"]) == 60
    assert (t["ccks_texts"]["split"] == "dev").sum() == 50  # ceil(450 / 9)
    assert len(t["ccks_mentions"]) == tr["mentions_accepted"] == t["ccks_texts"]["n_mentions"].sum()
    # every mention sits at its offset and links to NIL or a KB entity
    texts = dict(zip(t["ccks_texts"]["text_id"], t["ccks_texts"]["text"], strict=True))
    ids = set(t["ccks_entities"]["subject_id"])
    for m in t["ccks_mentions"].itertuples():
        assert texts[m.text_id][m.offset:m.offset + len(m.mention)] == m.mention
        assert m.kb_id == "NIL" or m.kb_id in ids
    split = dict(zip(t["ccks_texts"]["text_id"], t["ccks_texts"]["split"], strict=True))
    assert (t["ccks_mentions"]["text_id"].map(split) == t["ccks_mentions"]["split"]).all()
    # No dev text occurs verbatim in train (independent check on the written table), and the
    # report's duplicate counts match a recount.
    tx = t["ccks_texts"]
    assert not set(tx.loc[tx["split"] == "dev", "text"]) & set(tx.loc[tx["split"] == "train", "text"])
    dup = report["duplicates"]
    assert dup["cross_split_texts"] == 0
    assert dup["duplicate_rows"] == int(tx["text"].duplicated().sum())


@pytest.mark.slow
def test_e2e_official_files_with_bad_records(kedro_project: Path, kedro_run) -> None:
    root = _project(kedro_project)
    raw = root / "data/01_raw/ccks2019_el"
    raw.mkdir(parents=True)
    kb = list(default_kb_lines(n_entities=300, seed=5))
    train = list(default_train_lines(n_texts=100, n_entities=300, seed=5))
    bad_mention = json.dumps({"text_id": "x1", "text": "南京南站", "mention_data": [
        {"kb_id": "NIL", "mention": "南京", "offset": "0"},
        {"kb_id": "NIL", "mention": "南京", "offset": "9"}]}, ensure_ascii=False)
    (raw / "kb_data").write_text("\n".join([*kb, kb[0]]) + "\n", encoding="utf-8")  # dup id
    (raw / "train.json").write_text("\n".join([train[0], "{bad json", bad_mention, *train[1:]])
                                    + "\n", encoding="utf-8")
    (raw / "develop.json").write_bytes(b'{"text_id": "d1", "text": "\xe5\x8d"}\n'
                                       b'{"text_id": "d2", "text": "ok"}\n')
    kedro_run(root, ["ccks_ingest"])
    report = json.loads((root / "data/08_reporting/ccks_ingest_report.json").read_text("utf-8"))
    assert report["source"] == "official"
    files = report["files"]
    assert (files["kb_data"]["read"], files["kb_data"]["rejected"]) == (301, 1)
    assert (files["train.json"]["read"], files["train.json"]["rejected"]) == (102, 1)
    assert files["train.json"]["mentions_rejected"] == 1
    assert (files["develop.json"]["read"], files["develop.json"]["accepted"]) == (2, 1)
    for st in files.values():
        assert st["read"] == st["accepted"] + st["rejected"]
    rej = _tables(root)["ccks_rejects"]
    got = sorted(zip(rej["file"], rej["line"], rej["level"], rej["reason"], strict=True))
    assert got == [("develop.json", 1, "record", "invalid_utf8"),
                   ("kb_data", 301, "record", "duplicate_subject_id"),
                   ("train.json", 2, "record", "invalid_json"),
                   ("train.json", 3, "mention", "offset_out_of_range")]
