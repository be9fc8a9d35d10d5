"""Node-level tests of corpus_ingest: selection, rejects, limits, split, vocabulary, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kexue.config import ConfigError
from kexue.data.corpora import CharVocab, RawCorpus, TitlePairsSchema
from kexue.pipelines.corpus_ingest.nodes import (
    EMBEDDED_FILE,
    assign_splits,
    build_title_vocab,
    read_title_corpus,
    report_corpus_ingest,
    split_title_pairs,
)


def _params(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"corpus": "default", "default": {"n_pairs": 400, "seed": 0},
                            "min_freq": 2, "split": {"dev": 0.1, "test": 0.1, "seed": 7}}
    base.update(over)
    return base


def _raws(root: Path) -> dict[str, RawCorpus]:
    return {"csl_raw": RawCorpus(root / "csl", "*.tsv"),
            "lcsts_raw": RawCorpus(root / "lcsts", "*.tsv"),
            "thucnews_raw": RawCorpus(root / "thucnews", "*/*.txt")}


def _run_all(root: Path, params: dict[str, Any]):
    pairs_raw, rejects, stats = read_title_corpus(**_raws(root), params=params)
    pairs = split_title_pairs(pairs_raw, params)
    vocab = build_title_vocab(pairs, params)
    report = report_corpus_ingest(stats, pairs, rejects, vocab, params)
    return pairs, rejects, vocab, report


CSL_LINES = [
    "to title\t第一篇摘要内容\t第一篇标题",       # 1 ok (3-column benchmark layout)
    "第二篇标题\t第二篇摘要内容",                   # 2 ok (CLGE 2-column layout)
    "title\tabstract",                               # 3 header line
    "只有一列",                                      # 4 wrong column count
    "to title\t第一篇摘要内容\t第一篇标题",       # 5 duplicate of line 1
    "长标题\t" + "长" * 30,                           # 6 too long when max_source_chars=20
    "\t没有标题的摘要",                              # 7 empty title
]


def _write_csl(root: Path) -> Path:
    path = root / "csl" / "dev.tsv"
    path.parent.mkdir(parents=True)
    path.write_bytes(("\n".join(CSL_LINES) + "\n").encode() + b"\xff\xfe\tbad\n")  # 8 bad utf-8
    return path


def test_default_corpus_runs_and_conserves_counts(tmp_path: Path):
    pairs, rejects, vocab, report = _run_all(tmp_path, _params())
    TitlePairsSchema.validate(pairs)
    assert len(pairs) == 400 and rejects.empty
    assert set(pairs["file"]) == {EMBEDDED_FILE} and pairs["line"].tolist() == list(range(1, 401))
    assert report["counts"] == {"read": 400, "accepted": 400, "rejected": 0}
    assert report["splits"] == {"train": 320, "dev": 40, "test": 40}
    assert report["vocab"]["size"] == len(vocab["itos"]) and vocab["built_on"] == "train"
    assert 0.0 <= report["vocab"]["unk_rate_dev"] < 0.05


def test_csl_rejects_have_file_line_reason_and_counts_are_conserved(tmp_path: Path):
    path = _write_csl(tmp_path)
    params = _params(corpus="csl", max_source_chars=20)
    pairs, rejects, _, report = _run_all(tmp_path, params)
    assert pairs["target"].tolist() == ["第一篇标题", "第二篇标题"]
    assert pairs["source"].tolist() == ["第一篇摘要内容", "第二篇摘要内容"]
    got = {(r.line, r.reason) for r in rejects.itertuples()}
    assert got == {(3, "header_line"), (4, "field_count"), (5, "duplicate"),
                   (6, "source_too_long"), (7, "empty_title"), (8, "invalid_utf8")}
    assert set(rejects["file"]) == {str(path)} and set(rejects["level"]) == {"record"}
    assert rejects.set_index("line").loc[5, "detail"] == f"of {path}:1"
    assert list(rejects.columns) == ["file", "line", "level", "reason", "detail", "record"]
    assert report["counts"] == {"read": 8, "accepted": 2, "rejected": 6}
    assert report["files"] == {str(path): {"read": 8, "accepted": 2, "rejected": 6}}
    assert report["rejects_by_reason"] == {"duplicate": 1, "empty_title": 1, "field_count": 1,
                                           "header_line": 1, "invalid_utf8": 1,
                                           "source_too_long": 1}


def test_dedupe_off_keeps_duplicates(tmp_path: Path):
    _write_csl(tmp_path)
    pairs, rejects, _, _ = _run_all(tmp_path, _params(corpus="csl", dedupe=False))
    assert (pairs["target"] == "第一篇标题").sum() == 2
    assert "duplicate" not in set(rejects["reason"])
    assert pairs["pair_id"].is_unique


def test_truncation_is_applied_and_counted(tmp_path: Path):
    _write_csl(tmp_path)
    params = _params(corpus="csl", source_maxlen=5, target_maxlen=3)
    pairs, _, _, report = _run_all(tmp_path, params)
    assert pairs["source"].str.len().max() == 5 and pairs["target"].str.len().max() == 3
    assert pairs["source"].iloc[0] == "第一篇摘要"
    # accepted: lines 1, 2, 6 (long source, allowed without max_source_chars); the title of
    # line 6 (长标题) has exactly 3 chars, so it is not truncated
    assert report["truncated"]["source"] == 3 and report["truncated"]["target"] == 2
    assert report["truncated"]["source_maxlen"] == 5


def test_lcsts_and_thucnews_selection(tmp_path: Path):
    (tmp_path / "lcsts").mkdir()
    (tmp_path / "lcsts" / "a.tsv").write_text("摘要一\t正文一\n摘要二\t正文二\n", encoding="utf-8")
    for i, cat in enumerate(["体育", "财经"]):
        (tmp_path / "thucnews" / cat).mkdir(parents=True)
        (tmp_path / "thucnews" / cat / f"{i}.txt").write_text(f"标题{i}\n正文{i}\n", "utf-8")
    raws = _raws(tmp_path)
    lc, _, st = read_title_corpus(**raws, params=_params(corpus="lcsts"))
    assert lc["target"].tolist() == ["摘要一", "摘要二"] and st["corpus"] == "lcsts"
    th, _, _ = read_title_corpus(**raws, params=_params(corpus="thucnews"))
    assert th["target"].tolist() == ["标题0", "标题1"] and th["line"].tolist() == [1, 1]
    assert th["file"].str.contains("体育").iloc[0]


def test_limit_stops_reading(tmp_path: Path):
    pairs, _, stats = read_title_corpus(**_raws(tmp_path), params=_params(limit=25))
    assert len(pairs) == 25 and stats["files"][EMBEDDED_FILE]["read"] == 25


@pytest.mark.parametrize("corpus", ["csl", "lcsts", "thucnews"])
def test_selected_corpus_without_files_fails_fast(tmp_path: Path, corpus: str):
    with pytest.raises(ConfigError) as err:
        read_title_corpus(**_raws(tmp_path), params=_params(corpus=corpus))
    msg = str(err.value)
    assert "corpus_ingest.corpus" in msg and str(tmp_path / corpus) in msg
    assert "corpus_ingest.corpus: default" in msg


def test_bad_parameters_fail_fast(tmp_path: Path):
    with pytest.raises(ConfigError, match="corpus"):
        read_title_corpus(**_raws(tmp_path), params=_params(corpus="wiki"))
    with pytest.raises(ConfigError, match="min_freq"):
        read_title_corpus(**_raws(tmp_path), params=_params(min_freq=0))
    with pytest.raises(ConfigError, match="dev"):
        read_title_corpus(**_raws(tmp_path), params=_params(split={"dev": 0.6, "test": 0.5}))
    with pytest.raises(ConfigError, match="Unknown parameter"):
        read_title_corpus(**_raws(tmp_path), params=_params(min_freqs=3))
    with pytest.raises(ConfigError, match="max_source_chars must be >= 1"):
        read_title_corpus(**_raws(tmp_path), params=_params(max_source_chars=0))


def test_a_corpus_with_every_record_rejected_names_the_setting(tmp_path: Path):
    # CLGE's 2-column CSL file under csl_layout: to_title: every line is a field_count reject;
    # the run must stop naming the key, not fail later in the split's schema check
    path = tmp_path / "csl" / "val.tsv"
    path.parent.mkdir(parents=True)
    path.write_text("标题一\t摘要一\n标题二\t摘要二\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        read_title_corpus(**_raws(tmp_path), params=_params(corpus="csl", csl_layout="to_title"))
    msg = str(err.value)
    assert "2 record(s) read" in msg and "{'field_count': 2}" in msg
    assert f"{path}:1 field_count" in msg and "corpus_ingest.csl_layout" in msg
    # the same file reads under auto: the error is about the setting, not the data
    pairs, rejects, _ = read_title_corpus(**_raws(tmp_path), params=_params(corpus="csl"))
    assert len(pairs) == 2 and len(rejects) == 0


def test_split_is_deterministic_order_independent_and_exact():
    ids = [f"id{i}" for i in range(1000)]
    a = assign_splits(ids, 0.1, 0.2, seed=5)
    assert a == assign_splits(ids, 0.1, 0.2, seed=5)
    assert a != assign_splits(ids, 0.1, 0.2, seed=6)
    assert (a.count("train"), a.count("dev"), a.count("test")) == (700, 100, 200)
    reversed_labels = assign_splits(ids[::-1], 0.1, 0.2, seed=5)
    assert dict(zip(ids[::-1], reversed_labels)) == dict(zip(ids, a))
    assert assign_splits(ids, 0.0, 0.0, seed=5) == ["train"] * 1000


def test_split_node_is_stable_across_runs(tmp_path: Path):
    raw, _, _ = read_title_corpus(**_raws(tmp_path), params=_params())
    s1 = split_title_pairs(raw, _params())
    s2 = split_title_pairs(raw.sample(frac=1.0, random_state=0), _params())
    assert list(s1.columns) == ["pair_id", "source", "target", "split", "file", "line"]
    merged = s1.merge(s2, on="pair_id", suffixes=("_a", "_b"))
    assert len(merged) == len(s1) and (merged["split_a"] == merged["split_b"]).all()


def test_vocab_is_built_on_train_only():
    pairs = pd.DataFrame({
        "pair_id": ["a", "b", "c"], "source": ["甲甲乙", "丙丙", "丁丁"],
        "target": ["甲", "丙", "丁"], "split": ["train", "dev", "test"],
        "file": ["f"] * 3, "line": [1, 2, 3]})
    vocab = CharVocab.from_dict(build_title_vocab(pairs, _params(min_freq=1)))
    assert vocab.itos[4:] == ["甲", "乙"]
    assert vocab.encode("丙") == [vocab.unk_id]
    report = report_corpus_ingest(
        {"corpus": "x", "where": "w", "files": {"f": {"read": 3, "accepted": 3, "rejected": 0}},
         "rejects_by_reason": {}, "truncated": {}, "limit": None, "dedupe": True},
        pairs, pd.DataFrame(columns=["file", "line", "level", "reason", "detail", "record"]),
        build_title_vocab(pairs, _params(min_freq=1)), _params())
    assert report["vocab"]["unk_rate_dev"] == 1.0 and report["vocab"]["coverage_dev"] == 0.0
    with pytest.raises(ValueError, match="train split is empty"):
        build_title_vocab(pairs[pairs["split"] != "train"], _params())


def test_report_groups_many_files_per_folder(tmp_path: Path):
    for i in range(4):
        d = tmp_path / "thucnews" / ("体育" if i % 2 else "财经")
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i}.txt").write_text(f"标题{i}\n正文内容{i}\n", "utf-8")
    _, _, _, report = _run_all(tmp_path, _params(corpus="thucnews", report_max_files=2,
                                                 split={"dev": 0.0, "test": 0.0}))
    assert report["n_files"] == 4
    assert sorted(k.rsplit("/", 2)[-2] for k in report["files"]) == ["体育", "财经"]
    assert all(v["read"] == 2 for v in report["files"].values())


def test_split_keeps_identical_sources_together():
    ids = [f"id{i:04d}" for i in range(1000)]
    sources = [f"s{i % 400}" for i in range(1000)]            # 400 sources, 2-3 rows each
    labels = assign_splits(ids, 0.1, 0.2, seed=5, groups=sources)
    side: dict[str, set] = {}
    for s, lab in zip(sources, labels):
        side.setdefault(s, set()).add(lab)
    assert all(len(v) == 1 for v in side.values())
    assert 200 <= labels.count("test") < 203 and 100 <= labels.count("dev") < 103
    # Distinct sources: identical to the row split.
    assert assign_splits(ids, 0.1, 0.2, seed=5, groups=ids) == assign_splits(ids, 0.1, 0.2, 5)


def test_split_overlap_by_hand():
    from kexue.data.corpora.splits import split_overlap

    df = pd.DataFrame({
        "source": ["a", "b", "c", "d", "e", "a"],
        "target": ["x", "y", "x", "z", "y", "w"],
        "split": ["train", "train", "test", "test", "dev", "test"]})
    out = split_overlap(df)
    assert out["cross_split_sources"] == 1                    # "a" in train and test
    assert out["duplicate_sources"] == 1 and out["duplicate_titles"] == 2
    assert out["title_overlap"] == {"dev": 1.0, "test": pytest.approx(1 / 3)}


REAL_LCSTS = Path(__file__).resolve().parents[3].parent / "shared" / "real-data" / "lcsts"


@pytest.mark.skipif(not REAL_LCSTS.is_dir(), reason="../shared/real-data is not present")
def test_real_lcsts_rejects_count_by_stable_code_and_sources_do_not_leak():
    """The real LCSTS files: rejects group into a few codes (not one 'reason' per location),
    counts are conserved, and no source sits in two splits."""
    from kexue.data.corpora.readers import REJECT_REASONS

    params = _params(corpus="lcsts")
    raws = {"csl_raw": RawCorpus(REAL_LCSTS / "none", "*.tsv"),
            "lcsts_raw": RawCorpus(REAL_LCSTS, "clge_lcsts_*.tsv"),
            "thucnews_raw": RawCorpus(REAL_LCSTS / "none", "*/*.txt")}
    pairs_raw, rejects, stats = read_title_corpus(**raws, params=params)
    pairs = split_title_pairs(pairs_raw, params)
    report = report_corpus_ingest(stats, pairs, rejects, build_title_vocab(pairs, params), params)
    assert len(rejects) > 100                                  # the real files repeat pairs
    assert set(rejects["reason"]) <= set(REJECT_REASONS)
    assert sum(report["rejects_by_reason"].values()) == len(rejects)
    assert len(report["rejects_by_reason"]) <= 3
    assert report["counts"]["read"] == len(pairs) + len(rejects)
    assert report["leakage"]["cross_split_sources"] == 0
