"""pandera schemas of the title-generation tables (validated before they leave a node).

* :class:`TitlePairsSchema` — ``title_pairs``: one accepted (source, target) pair per row.
* :class:`RejectsSchema` — ``title_rejects``: one malformed record per row (house convention:
  ``file``, ``line``, ``reason``, ``record`` truncated to 200 chars).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

SPLITS = ("train", "dev", "test")
RECORD_MAX_CHARS = 200


class TitlePairsSchema(pa.DataFrameModel):
    """Accepted pairs. ``line`` is the 1-based line of the record (THUCNews: 1 = title line)."""

    pair_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    source: Series[str] = pa.Field(str_length={"min_value": 1})
    target: Series[str] = pa.Field(str_length={"min_value": 1})
    split: Series[str] = pa.Field(isin=list(SPLITS))
    file: Series[str] = pa.Field(str_length={"min_value": 1})
    line: Series[int] = pa.Field(ge=1)

    class Config:
        strict = True
        ordered = True


class RejectsSchema(pa.DataFrameModel):
    """Rejected records with where they came from and why."""

    file: Series[str]
    line: Series[int] = pa.Field(ge=1)
    reason: Series[str] = pa.Field(str_length={"min_value": 1})
    record: Series[str] = pa.Field(str_length={"max_value": RECORD_MAX_CHARS})

    class Config:
        strict = True
        ordered = True


PAIR_COLUMNS = list(TitlePairsSchema.to_schema().columns)
REJECT_COLUMNS = list(RejectsSchema.to_schema().columns)


def empty_rejects() -> pd.DataFrame:
    """An empty, schema-valid rejects table (so parquet always gets the columns)."""
    return pd.DataFrame({"file": pd.Series(dtype=str), "line": pd.Series(dtype="int64"),
                         "reason": pd.Series(dtype=str), "record": pd.Series(dtype=str)})
