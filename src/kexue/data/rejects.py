"""The one rejects table of every reader: ``file, line, level, reason, detail, record``.

* ``file`` -- where the record came from (a path, or the official file name);
* ``line`` -- 1-based line (or record index) in that file;
* ``level`` -- ``record`` (the whole record was dropped) or a finer unit (``mention``);
* ``reason`` -- a STABLE snake_case code from the reader's own table (``invalid_utf8``,
  ``field_count``, ``duplicate`` ...), so rejects can be counted by kind;
* ``detail`` -- the human explanation with the specifics (``got 4 fields``, ``of a.tsv:12``);
* ``record`` -- the raw text, truncated to 200 characters.

Reports count rejects per reason code (:func:`count_by_reason`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

RECORD_MAX_CHARS = 200
DETAIL_MAX_CHARS = 200
REJECT_COLUMNS = ("file", "line", "level", "reason", "detail", "record")
LEVELS = ("record", "mention")
CODE_PATTERN = r"^[a-z][a-z0-9_]*$"


class RejectsSchema(pa.DataFrameModel):
    """Columns and types shared by ``ccks_rejects``, ``title_rejects`` and ``tricks_rejects``."""

    file: Series[str] = pa.Field(str_length={"min_value": 1})
    line: Series[int] = pa.Field(ge=1)
    level: Series[str] = pa.Field(isin=list(LEVELS))
    reason: Series[str] = pa.Field(str_matches=CODE_PATTERN)
    detail: Series[str] = pa.Field(str_length={"max_value": DETAIL_MAX_CHARS})
    record: Series[str] = pa.Field(str_length={"max_value": RECORD_MAX_CHARS})

    class Config:
        strict = True
        ordered = True


def empty_rejects() -> pd.DataFrame:
    """A rejects table with no rows and the right dtypes (``line`` int64, the rest str)."""
    return pd.DataFrame({c: pd.Series([], dtype="int64" if c == "line" else "str")
                         for c in REJECT_COLUMNS})


def rejects_frame(rows: Iterable[Sequence[Any]], codes: Iterable[str] | None = None
                  ) -> pd.DataFrame:
    """Build and validate the table from ``(file, line, level, reason, detail, record)`` rows.

    Args:
        rows: One tuple per reject, in :data:`REJECT_COLUMNS` order.
        codes: The reader's reason codes; any other code is a bug and raises.
    """
    rows = list(rows)
    if not rows:
        return RejectsSchema.validate(empty_rejects())
    df = pd.DataFrame(rows, columns=list(REJECT_COLUMNS))
    df = df.astype({"line": "int64", "file": "str", "level": "str", "reason": "str"})
    df["detail"] = df["detail"].astype(str).str.slice(0, DETAIL_MAX_CHARS)
    df["record"] = df["record"].astype(str).str.slice(0, RECORD_MAX_CHARS)
    if codes is not None:
        unknown = sorted(set(df["reason"]) - set(codes))
        if unknown:
            raise ValueError(f"reject reason codes {unknown} are not in the reader's table "
                             f"{sorted(codes)}")
    return RejectsSchema.validate(df)


def count_by_reason(rejects: pd.DataFrame | Iterable[str]) -> dict[str, int]:
    """Rejects per reason code, most frequent first (ties by code)."""
    reasons = rejects["reason"] if isinstance(rejects, pd.DataFrame) else rejects
    counts = Counter(str(r) for r in reasons)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
