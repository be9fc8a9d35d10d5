"""One rejects table for every reader (kexue.data.rejects): same columns, stable reason codes."""

from __future__ import annotations

import pandas as pd
import pytest

from kexue.data.ccks.reader import Rejects, read_texts
from kexue.data.corpora.readers import REJECT_REASONS as CORPUS_CODES
from kexue.data.corpora.readers import parse_pair_lines
from kexue.data.rejects import REJECT_COLUMNS, RejectsSchema, count_by_reason, rejects_frame
from kexue.io.lines import Line


def test_count_by_reason_by_hand() -> None:
    assert count_by_reason(["b", "a", "b", "c", "a", "b"]) == {"b": 3, "a": 2, "c": 1}
    assert list(count_by_reason(["z", "a"])) == ["a", "z"]          # ties: by code
    assert count_by_reason(pd.DataFrame({"reason": []})) == {}


def test_rejects_frame_validates_codes_and_truncates() -> None:
    df = rejects_frame([("f.tsv", 3, "record", "duplicate", "of f.tsv:1", "x" * 500)],
                       codes=CORPUS_CODES)
    assert tuple(df.columns) == REJECT_COLUMNS and len(df["record"].iloc[0]) == 200
    with pytest.raises(ValueError, match="not in the reader's table"):
        rejects_frame([("f", 1, "record", "dup", "", "")], codes=CORPUS_CODES)
    with pytest.raises(Exception, match="str_matches"):       # free text is not a code
        rejects_frame([("f", 1, "record", "duplicate (of f:1)", "", "")])


def test_every_reader_writes_the_same_table() -> None:
    """CCKS and title corpora: identical columns, schema-valid, codes only (the image tables:
    tests/data/test_mnist_rejects.py checks the same columns)."""
    ccks = Rejects()
    read_texts([Line(1, "{not json"), Line(2, "")], ccks, "train.json")
    ccks_df = ccks.to_frame()
    corpus = [r for r in parse_pair_lines([Line(1, "a\tb\tc\td"), Line(2, " ")], "c.tsv", "auto")]
    corpus_df = rejects_frame([r.row() for r in corpus], codes=CORPUS_CODES)
    for df in (ccks_df, corpus_df):
        assert tuple(df.columns) == REJECT_COLUMNS
        RejectsSchema.validate(df)
    assert set(ccks_df["reason"]) == {"invalid_json", "empty_line"}
    assert set(corpus_df["reason"]) == {"field_count", "blank_line"}
    assert corpus_df["detail"].iloc[0] == "got 4 columns, expected 2 or 3 for layout auto"
