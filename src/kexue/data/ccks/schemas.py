"""pandera schemas of the ``ccks_ingest`` output tables (validated at the pipeline boundary).

Consumers (``entity_linking``) may rely on exactly these columns and checks. List columns
(``short_objects``, ``subject_ids``) hold Python lists in memory and numpy arrays after a parquet
round trip: both are accepted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from kexue.data.rejects import RejectsSchema as SharedRejectsSchema

SPLITS = ("train", "dev")
REJECT_REASONS = ("invalid_utf8", "empty_line", "invalid_json", "not_an_object", "missing_field",
                  "bad_field", "empty_field", "empty_text", "duplicate_subject_id",
                  "duplicate_text_id", "bad_mention", "bad_offset", "offset_out_of_range",
                  "mention_mismatch", "unknown_kb_id")


def _is_str_list(values: pd.Series) -> pd.Series:
    return values.map(lambda v: isinstance(v, (list, np.ndarray))
                      and all(isinstance(s, str) for s in v)).astype(bool)


class _Strict(pa.DataFrameModel):
    class Config:
        strict = False  # extra columns may be added later; the named ones are guaranteed
        coerce = False


class EntitiesSchema(_Strict):
    """``ccks_entities``: one row per accepted kb_data entity."""

    subject_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    subject: Series[str] = pa.Field(str_length={"min_value": 1})
    types: Series[str]  # '|'-joined type list, e.g. "CreativeWork|Movie"
    description: Series[str] = pa.Field(str_length={"min_value": 1})  # el.py style, lower-cased
    short_objects: Series[object]  # list[str], objects of len <= 10, longest first
    data_json: Series[str]  # the original ``data`` list as JSON

    @pa.check("short_objects", name="list of str")
    def _short_objects(cls, s: Series[object]) -> Series[bool]:
        return _is_str_list(s)

    @pa.check("description", name="lower-cased")
    def _lower(cls, s: Series[str]) -> Series[bool]:
        return s == s.str.lower()


class AliasesSchema(_Strict):
    """``ccks_aliases``: lower-cased alias (``《》`` stripped) -> sorted subject ids."""

    alias: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    subject_ids: Series[object]

    @pa.check("subject_ids", name="non-empty sorted list of str")
    def _ids(cls, s: Series[object]) -> Series[bool]:
        return s.map(lambda v: len(v) > 0 and all(isinstance(x, str) for x in v)
                     and list(v) == sorted(v)).astype(bool)

    @pa.check("alias", name="lower-cased, no title marks")
    def _alias(cls, s: Series[str]) -> Series[bool]:
        return (s == s.str.lower()) & ~s.str.contains("[《》]", regex=True)


class TextsSchema(_Strict):
    """``ccks_texts``: accepted train.json texts with their fixed split."""

    text_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    text: Series[str] = pa.Field(str_length={"min_value": 1})
    split: Series[str] = pa.Field(isin=list(SPLITS))
    n_mentions: Series[int] = pa.Field(ge=0)
    n_rejected_mentions: Series[int] = pa.Field(ge=0)


class MentionsSchema(_Strict):
    """``ccks_mentions``: accepted mentions (offset already checked against the text)."""

    text_id: Series[str]
    mention: Series[str] = pa.Field(str_length={"min_value": 1})
    offset: Series[int] = pa.Field(ge=0)
    kb_id: Series[str] = pa.Field(str_length={"min_value": 1})  # may be "NIL"
    split: Series[str] = pa.Field(isin=list(SPLITS))


class PredictTextsSchema(_Strict):
    """``ccks_predict_texts``: develop.json (unlabelled) texts."""

    text_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    text: Series[str] = pa.Field(str_length={"min_value": 1})


class RejectsSchema(SharedRejectsSchema):
    """``ccks_rejects``: the shared rejects table (:mod:`kexue.data.rejects`), one row per
    rejected record (``level=record``) or mention; files and reason codes of CCKS only."""

    file: Series[str] = pa.Field(isin=["kb_data", "train.json", "develop.json"])
    reason: Series[str] = pa.Field(isin=list(REJECT_REASONS))
