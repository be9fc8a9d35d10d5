"""corpus_ingest ``split.by_file``: the corpus' own train/val/test files become the splits
(used for the real LCSTS/CLGE slice that title_generation is reported on)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kexue.config import ConfigError
from kexue.data.corpora import RawCorpus
from kexue.pipelines.corpus_ingest.nodes import read_title_corpus, split_title_pairs

BY_FILE = {"train": "*train*", "dev": "*val*", "test": "*test*"}
REAL = Path(__file__).resolve().parents[3].parent / "shared" / "real-data" / "lcsts"


def ingest(root: Path, by_file: dict[str, str]):
    raw = RawCorpus(root, "*.tsv")
    params = {"corpus": "lcsts", "split": {"by_file": by_file}}
    pairs, rejects, _ = read_title_corpus(raw, raw, raw, params)
    return split_title_pairs(pairs, params), rejects


def test_each_file_becomes_its_split(tmp_path: Path):
    (tmp_path / "x_train.tsv").write_text("题一\t正文一\n题二\t正文二\n", encoding="utf-8")
    (tmp_path / "x_val.tsv").write_text("题三\t正文三\n", encoding="utf-8")
    (tmp_path / "x_test.tsv").write_text("题四\t正文四\n题一\t正文一\n", encoding="utf-8")
    pairs, rejects = ingest(tmp_path, BY_FILE)
    got = {t: s for t, s in zip(pairs["target"], pairs["split"])}
    # files are read in name order (test, train, val): the repeated pair is kept in test only
    assert got == {"题四": "test", "题一": "test", "题二": "train", "题三": "dev"}
    assert rejects["reason"].tolist() == ["duplicate"]


def test_a_file_matching_no_pattern_fails_naming_the_key(tmp_path: Path):
    (tmp_path / "x_train.tsv").write_text("题一\t正文一\n", encoding="utf-8")
    (tmp_path / "extra.tsv").write_text("题二\t正文二\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="split.by_file.*extra.tsv"):
        ingest(tmp_path, BY_FILE)
    with pytest.raises(ValueError, match="unknown split"):
        ingest(tmp_path, {"val": "*"})


@pytest.mark.skipif(not (REAL / "clge_lcsts_train.tsv").exists(), reason="needs ../shared/real-data")
def test_real_lcsts_files_keep_the_published_test_split(tmp_path: Path):
    for name in ("train", "val", "test"):  # exactly the published files (links, not copies)
        (tmp_path / f"clge_lcsts_{name}.tsv").symlink_to(REAL / f"clge_lcsts_{name}.tsv")
    pairs, rejects = ingest(tmp_path, BY_FILE)
    counts = pairs["split"].value_counts().to_dict()
    assert counts["test"] == 1000  # read first: none of its lines is a duplicate
    assert counts["train"] + counts["dev"] + len(rejects) == 8666 + 1000
    assert set(rejects["reason"]) <= {"duplicate"}
