"""Streaming readers for CCKS2019 ``kb_data``, ``train.json`` and ``develop.json``.

Every reader consumes :class:`kexue.io.Line` records one at a time (the 367 MB ``kb_data`` is never
loaded whole), builds column tables and sends every malformed record to a :class:`Rejects` sink
with ``file``, ``line`` (1-based), ``reason`` (a stable code), ``detail`` and the raw ``record``
(truncated to 200 chars). Nothing is dropped silently.

Granularity (counted consistently in :class:`FileStats`):

* **record level** (``level="record"``): the whole line is rejected (invalid UTF-8, invalid JSON,
  not an object, missing/ill-typed field, empty text, duplicate ``text_id``/``subject_id``, blank
  line). Per file: ``read = accepted + rejected`` lines.
* **mention level** (``level="mention"``, train only): one bad item of ``mention_data`` (ill-typed,
  offset not an integer string, offset out of range or ``text[offset:offset+len] != mention``,
  unknown ``kb_id``) rejects only that mention; its text is kept with the other mentions and
  ``n_rejected_mentions`` counts it (so consumers may drop such partially labelled texts).
  Over accepted texts: ``mentions_read = mentions_accepted + mentions_rejected``. Mentions of a
  rejected record are not counted (the record row holds them).

Reject ``reason`` codes: ``invalid_utf8``, ``empty_line``, ``invalid_json``, ``not_an_object``,
``missing_field``, ``bad_field``, ``empty_field``, ``empty_text``, ``duplicate_subject_id``,
``duplicate_text_id``, ``bad_mention``, ``bad_offset``, ``offset_out_of_range``,
``mention_mismatch``, ``unknown_kb_id``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from kexue.data.ccks.kb import ColumnBuffer, el_preprocess, strip_title_marks
from kexue.progress import track

if TYPE_CHECKING:  # kexue.io pulls in torch; the readers only need Line's shape
    from kexue.io import Line

RECORD_MAX_CHARS = 200
REJECT_COLUMNS = ["file", "line", "level", "reason", "detail", "record"]
ENTITY_SCHEMA = pa.schema([("subject_id", pa.string()), ("subject", pa.string()),
                           ("types", pa.string()), ("description", pa.string()),
                           ("short_objects", pa.list_(pa.string())), ("data_json", pa.string())])


class BadRecord(ValueError):
    """A record (or mention) failed validation: ``reason`` code + human ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass
class FileStats:
    """Per-file counts. Invariants: read == accepted + rejected (lines); for train,
    mentions_read == mentions_accepted + mentions_rejected (over accepted texts)."""

    file: str
    path: str = ""
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    mentions_read: int = 0
    mentions_accepted: int = 0
    mentions_rejected: int = 0
    reasons: Counter = field(default_factory=Counter)

    def check(self) -> None:
        if self.read != self.accepted + self.rejected or \
                self.mentions_read != self.mentions_accepted + self.mentions_rejected:
            raise AssertionError(f"count conservation broken for {self.file}: {self.to_dict()}")

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("path", "read", "accepted", "rejected")}
        if self.mentions_read:
            d.update(mentions_read=self.mentions_read, mentions_accepted=self.mentions_accepted,
                     mentions_rejected=self.mentions_rejected)
        d["reject_reasons"] = dict(sorted(self.reasons.items()))
        return d


class Rejects:
    """Collects rejected records/mentions; ``to_frame()`` gives the rejects table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, int, str, str, str, str]] = []

    def add(self, stats: FileStats, line: int, level: str, err: BadRecord, record: str) -> None:
        stats.reasons[err.reason] += 1
        self.rows.append((stats.file, line, level, err.reason, err.detail[:RECORD_MAX_CHARS],
                          record[:RECORD_MAX_CHARS]))

    def to_frame(self) -> pd.DataFrame:
        cols = list(zip(*self.rows)) if self.rows else [()] * len(REJECT_COLUMNS)
        return pd.DataFrame({name: pd.Series(list(values), dtype="int64" if name == "line"
                                             else "str")
                             for name, values in zip(REJECT_COLUMNS, cols, strict=True)})


def _parse_object(line: Line) -> dict[str, Any]:
    if line.error:
        raise BadRecord("invalid_utf8", line.error)
    if not line.text.strip():
        raise BadRecord("empty_line", "blank line")
    try:
        obj = json.loads(line.text)
    except json.JSONDecodeError as exc:
        raise BadRecord("invalid_json", str(exc)) from None
    if not isinstance(obj, dict):
        raise BadRecord("not_an_object", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _field(obj: dict[str, Any], key: str, kind: type, nonempty: bool = False) -> Any:
    if key not in obj:
        raise BadRecord("missing_field", f"missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        raise BadRecord("bad_field", f"field {key!r} must be {kind.__name__}, "
                                     f"got {type(value).__name__}")
    if nonempty and not value.strip():   # whitespace only: no alias, never linkable
        raise BadRecord("empty_field", f"field {key!r} is empty or only whitespace")
    return value


def _str_list(obj: dict[str, Any], key: str) -> list[str]:
    value = _field(obj, key, list)
    if not all(isinstance(v, str) for v in value):
        raise BadRecord("bad_field", f"field {key!r} must be a list of strings")
    return value


def _kb_data(obj: dict[str, Any]) -> list[tuple[str, str]]:
    data = _field(obj, "data", list)
    try:  # fast path; the loop below only runs to name the bad item
        pairs = [(item["predicate"], item["object"]) for item in data]
        if all(type(p) is str and type(o) is str for p, o in pairs):
            return pairs
    except (KeyError, TypeError, IndexError):
        pass
    for i, item in enumerate(data):
        if not (isinstance(item, dict) and isinstance(item.get("predicate"), str)
                and isinstance(item.get("object"), str)):
            raise BadRecord("bad_field", f"data[{i}] must be an object with string "
                                         "'predicate' and 'object'")
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class KBResult:
    """Output of :func:`read_kb`."""

    entities: pd.DataFrame
    aliases: pd.DataFrame
    subject_ids: frozenset[str]
    stats: FileStats


def read_kb(lines: Iterable[Line], rejects: Rejects, file: str = "kb_data",
            path: str = "", chunk: int = 20_000) -> KBResult:
    """Stream ``kb_data`` lines into the entity and alias tables (see module docstring).

    Args:
        lines: Lines from a :class:`kexue.io.LineSource`.
        rejects: Sink for malformed records.
        file: Logical file name written to the rejects table.
        path: Where the lines came from (for the report).
        chunk: Rows buffered as Python objects before flushing to Arrow.

    Returns:
        ``KBResult`` with ``entities`` (subject_id, subject, types, description, short_objects,
        data_json), ``aliases`` (alias, subject_ids), the accepted ids and the stats.
    """
    stats = FileStats(file, path)
    buf = ColumnBuffer(ENTITY_SCHEMA, chunk)
    first_seen: dict[str, int] = {}
    alias_ids: dict[str, list[str]] = {}
    for line in track(lines, f"reading {file}", unit=" lines"):
        stats.read += 1
        try:
            obj = _parse_object(line)
            sid = _field(obj, "subject_id", str, nonempty=True)
            subject = _field(obj, "subject", str, nonempty=True)
            alias, types, data = _str_list(obj, "alias"), _str_list(obj, "type"), _kb_data(obj)
            if sid in first_seen:
                raise BadRecord("duplicate_subject_id",
                                f"subject_id {sid!r} already seen on line {first_seen[sid]}")
        except BadRecord as err:
            stats.rejected += 1
            rejects.add(stats, line.no, "record", err, line.text)
            continue
        first_seen[sid] = line.no
        names, description, short = el_preprocess(subject, alias, data)
        buf.append(subject_id=sid, subject=subject, types="|".join(types),
                   description=description, short_objects=short,
                   data_json=json.dumps(obj["data"], ensure_ascii=False))
        for name in dict.fromkeys(strip_title_marks(a) for a in names):
            if name.strip():
                alias_ids.setdefault(name, []).append(sid)
        stats.accepted += 1
    stats.check()
    entities = buf.to_table().to_pandas()
    keys = list(alias_ids)
    aliases = pd.DataFrame({"alias": pd.Series(keys, dtype="str"),
                            "subject_ids": [sorted(alias_ids[k]) for k in keys]})
    return KBResult(entities, aliases, frozenset(first_seen), stats)


def _mention(item: Any, text: str, kb_ids: Collection[str] | None) -> tuple[str, int, str]:
    if not isinstance(item, dict):
        raise BadRecord("bad_mention", f"mention must be an object, got {type(item).__name__}")
    for key in ("kb_id", "mention", "offset"):
        if not isinstance(item.get(key), str):
            raise BadRecord("bad_mention", f"mention field {key!r} missing or not a string")
    mention, offset, kb_id = item["mention"], item["offset"], item["kb_id"]
    if not mention.strip() or not kb_id.strip():
        raise BadRecord("bad_mention", "empty or whitespace-only 'mention' or 'kb_id'")
    if not (offset.isascii() and offset.isdigit()):
        raise BadRecord("bad_offset", f"offset {offset!r} is not an integer string")
    start = int(offset)
    if start + len(mention) > len(text):
        raise BadRecord("offset_out_of_range", f"offset {start} + len({mention!r}) "
                                               f"> len(text) = {len(text)}")
    if text[start:start + len(mention)] != mention:
        raise BadRecord("mention_mismatch", f"text[{start}:{start + len(mention)}] = "
                                            f"{text[start:start + len(mention)]!r} != {mention!r}")
    if kb_ids is not None and kb_id != "NIL" and kb_id not in kb_ids:
        raise BadRecord("unknown_kb_id", f"kb_id {kb_id!r} is neither 'NIL' nor in kb_data")
    return mention, start, kb_id


@dataclass
class TextsResult:
    """Output of :func:`read_texts`: texts, mentions (empty when unlabelled) and stats."""

    texts: pd.DataFrame
    mentions: pd.DataFrame
    stats: FileStats


def read_texts(lines: Iterable[Line], rejects: Rejects, file: str, path: str = "",
               labelled: bool = True, kb_ids: Collection[str] | None = None) -> TextsResult:
    """Stream ``train.json`` (``labelled``) or ``develop.json`` lines into tables.

    Args:
        lines: Lines from a :class:`kexue.io.LineSource`.
        rejects: Sink for malformed records and mentions.
        file: Logical file name for the rejects table.
        path: Where the lines came from (for the report).
        labelled: Parse and validate ``mention_data`` (train); else it is ignored (develop).
        kb_ids: Accepted KB ``subject_id`` set for the ``unknown_kb_id`` check; ``None``
            disables that check (e.g. for a train sample whose KB is only a slice).

    Returns:
        ``texts`` (text_id, text, n_mentions, n_rejected_mentions), ``mentions`` (text_id,
        mention, offset, kb_id) and the stats.
    """
    stats = FileStats(file, path)
    seen: dict[str, int] = {}
    t_ids, t_texts, t_nm, t_nbad = [], [], [], []
    m_tid, m_mention, m_offset, m_kb = [], [], [], []
    for line in track(lines, f"reading {file}", unit=" lines"):
        stats.read += 1
        try:
            obj = _parse_object(line)
            tid = _field(obj, "text_id", str, nonempty=True)
            text = _field(obj, "text", str)
            if not text.strip():
                raise BadRecord("empty_text", f"text of text_id {tid!r} is empty")
            items = _field(obj, "mention_data", list) if labelled else []
            if tid in seen:
                raise BadRecord("duplicate_text_id",
                                f"text_id {tid!r} already seen on line {seen[tid]}")
        except BadRecord as err:
            stats.rejected += 1
            rejects.add(stats, line.no, "record", err, line.text)
            continue
        seen[tid] = line.no
        stats.accepted += 1
        n_ok = n_bad = 0
        for item in items:
            stats.mentions_read += 1
            try:
                mention, start, kb_id = _mention(item, text, kb_ids)
            except BadRecord as err:
                n_bad += 1
                raw = json.dumps({"text_id": tid, "mention": item}, ensure_ascii=False)
                rejects.add(stats, line.no, "mention", err, raw)
                continue
            n_ok += 1
            m_tid.append(tid), m_mention.append(mention), m_offset.append(start)
            m_kb.append(kb_id)
        stats.mentions_accepted += n_ok
        stats.mentions_rejected += n_bad
        t_ids.append(tid), t_texts.append(text), t_nm.append(n_ok), t_nbad.append(n_bad)
    stats.check()
    texts = pd.DataFrame({"text_id": pd.Series(t_ids, dtype="str"),
                          "text": pd.Series(t_texts, dtype="str"),
                          "n_mentions": np.asarray(t_nm, dtype=np.int64),
                          "n_rejected_mentions": np.asarray(t_nbad, dtype=np.int64)})
    mentions = pd.DataFrame({"text_id": pd.Series(m_tid, dtype="str"),
                             "mention": pd.Series(m_mention, dtype="str"),
                             "offset": np.asarray(m_offset, dtype=np.int64),
                             "kb_id": pd.Series(m_kb, dtype="str")})
    return TextsResult(texts, mentions, stats)


def assign_split(text_ids: pd.Series, dev_every: int, seed: int,
                 texts: pd.Series | None = None) -> pd.Series:
    """el.py's fixed split, grouped so that identical texts never straddle train and dev.

    The distinct texts (first occurrence order; every text id is its own group when ``texts``
    is None) are shuffled with ``seed``; group ``i`` of the shuffle is dev iff
    ``i % dev_every == 0`` and every row of a group takes its label. With no duplicates this is
    exactly el.py's row split.

    Args:
        text_ids: Accepted train text ids, in file order.
        dev_every: 9 in el.py (dev = 1/9 of the distinct texts).
        seed: Shuffle seed.
        texts: The texts, aligned with ``text_ids`` (the grouping key).

    Returns:
        A ``"train"``/``"dev"`` Series aligned with ``text_ids``.
    """
    keys = text_ids if texts is None else texts
    codes, uniques = pd.factorize(keys.to_numpy(), sort=False)   # group of each row
    order = np.random.default_rng(seed).permutation(len(uniques))  # order[i] = group index
    is_dev_group = np.zeros(len(uniques), dtype=bool)
    is_dev_group[order[::dev_every]] = True
    return pd.Series(np.where(is_dev_group[codes], "dev", "train"), index=text_ids.index,
                     dtype="str")


def duplicate_stats(texts: pd.Series, split: pd.Series | None = None) -> dict[str, int]:
    """Exact-duplicate counts of ``texts``: extra copies, distinct texts repeated, and (with a
    ``split``) distinct texts found in more than one split (a leak; 0 by construction here)."""
    counts = texts.value_counts()
    out = {"duplicate_rows": int((counts - 1).sum()), "repeated_texts": int((counts > 1).sum())}
    if split is not None:
        per_text = pd.DataFrame({"t": texts.to_numpy(), "s": split.to_numpy()})
        out["cross_split_texts"] = int((per_text.groupby("t")["s"].nunique() > 1).sum())
    return out
