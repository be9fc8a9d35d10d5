"""kexue.data.images.table_rejects: row-level rejects with file/line/reason, conservation, fail-fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kexue.data.images.table import (
    EmbeddedImagesDataset,
    ImageTableError,
    RawImageTable,
    load_embedded,
    pixel_columns,
    read_image_csv,
)
from kexue.data.images.table_rejects import REJECT_REASONS, split_rejects
from kexue.data.rejects import REJECT_COLUMNS

HEADER = ",".join(pixel_columns(64) + ["label"])


def _good(i: int) -> list[str]:
    """Fields of a valid digits record (over 200 chars): 64 whole levels 0..16, label i % 10."""
    return [f"{(i + j) % 17}.0" for j in range(64)] + [str(i % 10)]   # pandas-style "3.0"


def _with(i: int, col: int, value: str) -> str:
    fields = _good(i)
    fields[col] = value
    return ",".join(fields)


# one bad record per reason; the value is (code, raw line, detail expected in `detail`)
BAD = {
    "field_count": ",".join(_good(1)[:-2]),
    "bad_label": _with(2, 64, "10"),
    "pixel_missing": _with(3, 7, ""),
    "pixel_non_numeric": _with(4, 9, "abc"),
    "pixel_out_of_range": _with(5, 11, "17"),
    "pixel_not_whole": _with(6, 13, "2.5"),
}
DETAIL = {"field_count": "expected 65 fields, got 63", "bad_label": "label='10'",
          "pixel_missing": "px007=''", "pixel_non_numeric": "px009='abc'",
          "pixel_out_of_range": "px011='17'", "pixel_not_whole": "px013='2.5'"}


def _write(path: Path, body: list[str | bytes]) -> Path:
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in [HEADER, *body])
    path.write_bytes(data)
    return path


@pytest.fixture
def mixed(tmp_path) -> tuple[Path, dict[str, int]]:
    """4 good records with the 6 bad ones, a blank line and a non-UTF-8 line interleaved."""
    body: list[str | bytes] = [",".join(_good(0))]
    where = {}
    for code, line in BAD.items():
        body.append(line)
        where[code] = len(body) + 1                      # +1: the header is line 1
        body.append(",".join(_good(len(body))))
    body.append("")                                      # blank line -> field_count
    where["blank"] = len(body) + 1
    body.append(b"\xff\xfe" + b",".join(s.encode() for s in _good(0)))
    where["invalid_utf8"] = len(body) + 1
    return _write(tmp_path / "digits.csv", body), where


@pytest.mark.parametrize("code", [*BAD, "invalid_utf8"])
def test_each_reject_reason_has_file_line_reason_and_record(mixed, code):
    path, where = mixed
    _, rejects, _ = split_rejects(read_image_csv(path), "digits")
    assert tuple(rejects.columns) == REJECT_COLUMNS
    row = rejects.loc[rejects["line"] == where[code]]
    assert len(row) == 1, rejects[["line", "reason"]]
    row = row.iloc[0]
    assert row["file"] == str(path)
    assert row["reason"] == code and row["level"] == "record"
    assert code in REJECT_REASONS
    if code != "invalid_utf8":
        assert DETAIL[code] in row["detail"]
        # the record is the raw text of that physical line (independent read of the file)
        assert row["record"] == path.read_text(errors="replace").splitlines()[where[code] - 1][:200]
        assert len(row["record"]) == 200                 # 64 fields > 200 chars: truncated
    else:
        assert "invalid UTF-8" in row["detail"]


def test_counts_are_conserved_and_accepted_rows_are_the_good_ones(mixed):
    path, where = mixed
    accepted, rejects, counts = split_rejects(read_image_csv(path), "digits")
    n_lines = len(path.read_bytes().splitlines())
    assert counts["read"] == n_lines - 1 == 15             # every line after the header
    assert counts["read"] == counts["accepted"] + counts["rejected"] == len(accepted) + len(rejects)
    assert (counts["accepted"], counts["rejected"]) == (7, 8)
    assert counts["by_reason"] == {"invalid_utf8": 1, "field_count": 2, "bad_label": 1,
                                   "pixel_missing": 1, "pixel_non_numeric": 1,
                                   "pixel_out_of_range": 1, "pixel_not_whole": 1}
    assert sum(counts["by_reason"].values()) == counts["rejected"]
    assert rejects["line"].tolist() == sorted(where.values())
    assert "blank line" in rejects.loc[rejects["line"] == where["blank"], "detail"].item()
    # the pandera-validated accepted table holds exactly the good records, parsed
    assert accepted["px000"].dtype == "uint8" and accepted["label"].dtype == "int64"
    expected = np.array([_good(i) for i in (0, 2, 4, 6, 8, 10, 12)], dtype=float)
    np.testing.assert_array_equal(accepted.to_numpy(dtype=float), expected)


def test_embedded_sources_have_no_rejects():
    for source, n in (("mnist", 5000), ("digits", 1797)):
        raw = EmbeddedImagesDataset(source=source, filepath="does/not/exist.csv").load()
        accepted, rejects, counts = split_rejects(raw, source)
        assert rejects.empty and tuple(rejects.columns) == REJECT_COLUMNS
        assert counts == {"file": f"<embedded:{source}>", "source": source, "read": n,
                          "accepted": n, "rejected": 0, "by_reason": {}}
        assert len(accepted) == n


def test_embedded_rows_use_index_plus_two_and_the_source_name():
    table = load_embedded("digits").head(5).copy()
    table.loc[3, "px010"] = np.nan
    table.loc[1, "label"] = 11
    raw = RawImageTable.from_frame(table, "<embedded:digits>")
    _, rejects, counts = split_rejects(raw, "digits")
    assert rejects["line"].tolist() == [3, 5]               # row index + 2
    assert rejects["file"].tolist() == ["<embedded:digits>"] * 2
    assert rejects["reason"].tolist() == ["bad_label", "pixel_missing"]
    assert rejects["record"].iloc[0].endswith(",11")        # whole numbers printed as integers
    assert counts["read"] == 5 and counts["accepted"] == 3


def test_only_bad_rows_fail_fast_naming_the_file(tmp_path):
    path = _write(tmp_path / "bad.csv", [BAD["bad_label"], BAD["pixel_non_numeric"]])
    with pytest.raises(ImageTableError) as info:
        split_rejects(read_image_csv(path), "digits")
    message = str(info.value)
    assert str(path) in message and "no image record left" in message
    assert "read 2, rejected 2" in message and "line 2: bad_label" in message and "Fix:" in message
    header_only = _write(tmp_path / "empty.csv", [])
    with pytest.raises(ImageTableError, match=r"empty\.csv: no image record left: read 0"):
        split_rejects(read_image_csv(header_only), "digits")


@pytest.mark.parametrize("header, expected", [
    (",".join(pixel_columns(63) + ["label"]), r"1 missing column\(s\) \['px063'\]"),
    (HEADER + ",extra", r"1 unexpected column\(s\) \['extra'\]"),
    (",".join(["label"] + pixel_columns(64)), r"out of order \(position 1 is 'label'"),
    (",".join(pixel_columns(784) + ["label"]), r"720 unexpected column"),   # an MNIST file
    ("", r"empty or line 1 \(the header\) is blank"),
])
def test_table_level_header_problems_fail_fast(tmp_path, header, expected):
    path = tmp_path / "digits.csv"
    path.write_text(header + "\n" + ",".join(_good(0)) + "\n")
    with pytest.raises(ImageTableError, match=expected) as info:
        split_rejects(read_image_csv(path), "digits")
    assert str(path) in str(info.value) and "px063,label" in str(info.value)
    assert "tricks.data.source" in str(info.value)


def test_a_user_csv_of_the_embedded_table_round_trips(tmp_path):
    """pandas writes the embedded digits; the line parser + rejects give the same table back."""
    table = load_embedded("digits").head(40)
    path = tmp_path / "digits.csv"
    table.to_csv(path, index=False)
    accepted, rejects, counts = split_rejects(read_image_csv(path), "digits")
    assert rejects.empty and counts["read"] == counts["accepted"] == 40
    pd.testing.assert_frame_equal(accepted.astype(float), table.astype(float))
