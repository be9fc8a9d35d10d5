"""pandera schemas of the title-generation tables (validated before they leave a node).

* :class:`TitlePairsSchema` — ``title_pairs``: one accepted (source, target) pair per row.
* :class:`RejectsSchema` — ``title_rejects``: the shared rejects table of every reader
  (:mod:`kexue.data.rejects`: file, line, level, reason code, detail, record).
"""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

from kexue.data.rejects import RECORD_MAX_CHARS, RejectsSchema, empty_rejects
from kexue.data.rejects import REJECT_COLUMNS as _REJECT_COLUMNS

__all__ = [
    "PAIR_COLUMNS",
    "RECORD_MAX_CHARS",
    "REJECT_COLUMNS",
    "SPLITS",
    "RejectsSchema",
    "TitlePairsSchema",
    "empty_rejects",
]

SPLITS = ("train", "dev", "test")


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


PAIR_COLUMNS = list(TitlePairsSchema.to_schema().columns)
REJECT_COLUMNS = list(_REJECT_COLUMNS)
