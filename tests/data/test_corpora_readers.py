"""Readers of the title corpora: real sample formats, one test per reject reason, raw dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.io import DatasetError

from kexue.data.corpora import (
    RawCorpus,
    RawCorpusDataset,
    RawPair,
    Reject,
    parse_pair_lines,
    parse_thucnews_article,
)
from kexue.io.lines import Line


def _pairs(records):
    return [r for r in records if isinstance(r, RawPair)]


def _rejects(records):
    return [r for r in records if isinstance(r, Reject)]


def _read(path: Path, layout: str = "auto"):
    return list(parse_pair_lines(RawCorpus.lines(path), str(path), layout))


# ------------------------------------------------------------------ real sample formats
def test_csl_benchmark_dev_parses_1000_pairs(shared_samples: Path):
    path = shared_samples / "csl" / "csl_benchmark_ts_dev.tsv"
    records = _read(path)
    pairs = _pairs(records)
    assert len(records) == 1000 and len(pairs) == 1000
    # layout "to title<TAB>abstract<TAB>title": the title is the LAST column
    first_line = path.read_text(encoding="utf-8").split("\n", 1)[0].split("\t")
    assert first_line[0] == "to title"
    assert pairs[0].target == first_line[2].strip() and pairs[0].source == first_line[1].strip()
    assert pairs[0].target == "一种基于平方和优化的飞行器大角度机动镇定控制器设计方法"
    assert [p.line for p in pairs[:3]] == [1, 2, 3] and pairs[-1].line == 1000
    assert all(len(p.target) < len(p.source) for p in pairs)
    # the explicit layout gives the same result
    assert _pairs(_read(path, "to_title")) == pairs


def test_lcsts_sample_parses_every_line(shared_samples: Path):
    # README says 11 pairs, but the file holds 12 lines (the last has no trailing newline)
    path = shared_samples / "lcsts" / "lcsts_format_sample.tsv"
    n_lines = len(path.read_bytes().decode("utf-8").splitlines())
    pairs = _pairs(_read(path, "title_abstract"))
    assert len(pairs) == n_lines == 12
    assert pairs[0].target == "对赌协议的18个致命陷阱"
    assert pairs[0].source.startswith("很多创业者对对赌协议谈虎色变")
    assert pairs[-1].target == "香港全民炒iPhone6利润率最少100%"


def test_thucnews_sample_is_one_article(shared_samples: Path):
    path = shared_samples / "thucnews" / "thucnews_format_sample.txt"
    rec = parse_thucnews_article(RawCorpus.lines(path), str(path))
    assert isinstance(rec, RawPair)
    assert rec.target == "惨烈3加时背后还有欣喜 6分钟完美防守如何延续？"
    assert rec.source.startswith("新浪体育讯北京时间1月14日消息")
    assert rec.line == 1 and rec.file == str(path)


def test_clge_csl_two_column_layout(tmp_path: Path):
    path = tmp_path / "train.tsv"
    path.write_text("标题一\t摘要一的内容\n标题二\t摘要二的内容\n", encoding="utf-8")
    pairs = _pairs(_read(path))
    assert [(p.target, p.source) for p in pairs] == [("标题一", "摘要一的内容"),
                                                    ("标题二", "摘要二的内容")]


# ------------------------------------------------------------------ one test per reject reason
def _single_reject(tmp_path: Path, content: bytes, layout: str = "auto") -> tuple[Reject, list]:
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"\xe6\xa0\x87\xe9\xa2\x98\tok text\n" + content + b"\nt2\tok text 2\n")
    records = _read(path, layout)
    rejects = _rejects(records)
    assert len(records) == 3 and len(rejects) == 1, records
    assert rejects[0].file == str(path) and rejects[0].line == 2
    return rejects[0], records


def test_reject_invalid_utf8(tmp_path: Path):
    rej, _ = _single_reject(tmp_path, b"\xff\xfebad\tsource")
    assert rej.reason == "invalid_utf8" and "invalid start byte" in rej.detail


def test_reject_wrong_column_count(tmp_path: Path):
    rej, _ = _single_reject(tmp_path, b"a\tb\tc\td")
    assert rej.reason == "field_count" and "got 4" in rej.detail
    assert rej.record == "a\tb\tc\td"


def test_reject_wrong_column_count_for_configured_layout(tmp_path: Path):
    path = tmp_path / "x.tsv"
    path.write_text("to title\tabs\ttitle\nt\ts\n", encoding="utf-8")
    # auto accepts both layouts; a configured layout rejects the other one, at the right line
    assert len(_pairs(_read(path, "auto"))) == 2
    rejects = _rejects(_read(path, "to_title"))
    assert [(r.line, r.reason) for r in rejects] == [(2, "field_count")]
    rejects = _rejects(_read(path, "title_abstract"))
    assert [(r.line, r.reason) for r in rejects] == [(1, "field_count")]


@pytest.mark.parametrize("layout", ["auto", "to_title"])
def test_three_columns_without_the_csl_prefix_are_rejected_not_swapped(tmp_path: Path,
                                                                       layout: str):
    # a CLGE "title<TAB>abstract" line whose abstract holds a tab: read as the benchmark layout
    # it would become (title='制表符', text='摘要 含') and the real title would be lost
    path = tmp_path / "x.tsv"
    path.write_text(" To Title \t摘要\t标题\n标题\t摘要 含\t制表符\n", encoding="utf-8")
    records = _read(path, layout)
    assert [(p.line, p.target, p.source) for p in _pairs(records)] == [(1, "标题", "摘要")]
    [rej] = _rejects(records)
    assert (rej.line, rej.reason) == (2, "field_count") and "'to title'" in rej.detail


def test_reject_empty_title(tmp_path: Path):
    rej, _ = _single_reject(tmp_path, b"  \tsome source")
    assert rej.reason == "empty_title"


def test_reject_empty_text(tmp_path: Path):
    rej, _ = _single_reject(tmp_path, b"to title\t \ta title")
    assert rej.reason == "empty_source"


def test_reject_header_line(tmp_path: Path):
    rej, _ = _single_reject(tmp_path, b"title\tabstract")
    assert rej.reason == "header_line"


def test_reject_blank_line(tmp_path: Path):
    rej, _ = _single_reject(tmp_path, b"   ")
    assert rej.reason == "blank_line"


def test_record_is_truncated_to_200_chars(tmp_path: Path):
    rej, _ = _single_reject(tmp_path, ("x\t" * 300).encode())
    assert len(rej.record) == 200


def test_unknown_layout_fails_fast():
    with pytest.raises(ValueError, match="unknown layout"):
        list(parse_pair_lines([Line(1, "a\tb")], "f", "weird"))  # type: ignore[arg-type]


# ------------------------------------------------------------------ THUCNews bad articles
@pytest.mark.parametrize(("content", "line", "reason"), [
    (b"", 1, "empty_title"),
    (b"   \nbody text\n", 1, "empty_title"),
    (b"A title\n\n   \n", 1, "empty_source"),
    (b"A title\nfine body\n\xc3\x28 broken\n", 3, "invalid_utf8"),
])
def test_thucnews_rejects(tmp_path: Path, content: bytes, line: int, reason: str):
    path = tmp_path / "体育" / "1.txt"
    path.parent.mkdir()
    path.write_bytes(content)
    rec = parse_thucnews_article(RawCorpus.lines(path), str(path))
    assert isinstance(rec, Reject)
    assert (rec.file, rec.line, rec.reason) == (str(path), line, reason)


def test_thucnews_body_lines_are_stripped_and_joined(tmp_path: Path):
    path = tmp_path / "a.txt"
    path.write_text("\ufeff标题\n\u3000\u3000第一段。\n\n\u3000\u3000第二段。\n", encoding="utf-8")
    rec = parse_thucnews_article(RawCorpus.lines(path), str(path))
    assert isinstance(rec, RawPair) and (rec.target, rec.source) == ("标题", "第一段。第二段。")


# ------------------------------------------------------------------ the lazy raw dataset
def test_raw_corpus_dataset_is_lazy_and_read_only(tmp_path: Path):
    ds = RawCorpusDataset(filepath=str(tmp_path / "thucnews"), glob="*/*.txt")
    corpus = ds.load()  # a missing folder is not an error at load time
    assert corpus.files() == [] and not corpus.exists() and not ds.exists()
    for cat, name in [("财经", "2.txt"), ("体育", "1.txt"), ("体育", "0.txt")]:
        (tmp_path / "thucnews" / cat).mkdir(parents=True, exist_ok=True)
        (tmp_path / "thucnews" / cat / name).write_text("t\nb\n", encoding="utf-8")
    (tmp_path / "thucnews" / "README.md").write_text("not an article")
    files = ds.load().files()
    names = [f"{p.parent.name}/{p.name}" for p in files]
    assert names == ["体育/0.txt", "体育/1.txt", "财经/2.txt"]
    assert ds.exists() and corpus.where.endswith("thucnews/*/*.txt")
    with pytest.raises(DatasetError, match="read-only"):
        ds.save(corpus)  # type: ignore[arg-type]


def test_raw_corpus_single_file(tmp_path: Path):
    path = tmp_path / "one.tsv"
    path.write_text("a\tb\n", encoding="utf-8")
    assert RawCorpus(path, "*.tsv").files() == [path]


def test_unknown_reason_code_is_a_bug():
    with pytest.raises(ValueError, match="unknown reject reason"):
        Reject("f", 1, "wrong column count (got 4)", "x")
