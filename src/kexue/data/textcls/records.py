"""What every text-classification reader returns: :class:`TextRecords` over a :class:`LabelSpace`.

* :class:`LabelSpace` -- the classes of a task; the position in ``ids`` is the model's class index.
  CLUE tasks build it from their ``labels.json`` (:meth:`LabelSpace.from_labels_json`), in file
  order.
* :class:`TextRecords` -- the accepted records of ONE file / split as a frame with the columns
  :data:`FRAME_COLUMNS` (``file, line, text, label, label_id, label_name``; ``label`` is the int
  class index, ``-1`` = unlabelled), the rejected lines (the shared table of
  :mod:`kexue.data.rejects`), and ``read == len(frame) + len(rejects)``.
* :class:`TextFormatError` -- a whole-file defect (wrong header, unreadable labels.json): fail fast,
  naming the file and what was expected.
* :class:`RawTextSplits` -- what a reader dataset's ``load()`` returns: a lazy ``read()`` of
  ``{split: TextRecords}``, or why the files are ``unavailable``.
* :func:`overlap` / :func:`duplicates` -- leakage checks on the ``text`` column (exact match).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kexue.data.rejects import count_by_reason, empty_rejects, rejects_frame
from kexue.io.lines import decode_lines

FRAME_COLUMNS = ("file", "line", "text", "label", "label_id", "label_name")
UNLABELLED = -1

# Stable reason codes of every text-classification reader (whole-file defects raise instead).
REJECT_REASONS = {
    "invalid_utf8": "the line is not valid UTF-8",
    "blank_line": "an empty line inside the file",
    "invalid_json": "the JSON line does not parse, or is not an object",
    "missing_field": "a required field (label / sentence) is absent or not a string / int",
    "empty_text": "the text field is empty or only whitespace",
    "unknown_label": "the label id is not in the task's label space (labels.json)",
    "label_mismatch": "the label's name in the record differs from labels.json",
    "field_count": "the TSV line does not have the header's number of fields",
    "bad_label": "the label value is outside the format's range (ChnSentiCorp: 0 / 1)",
}


class TextFormatError(ValueError):
    """A whole file is not what its format promises (names the file and the expectation)."""


@dataclass(frozen=True)
class LabelSpace:
    """Class ids (as the files spell them) and their names; index in ``ids`` = class index."""

    ids: list[str]
    names: list[str]

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.names):
            raise ValueError(f"{len(self.ids)} label ids but {len(self.names)} names")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"duplicate label ids in {self.ids}")
        object.__setattr__(self, "_pos", {i: k for k, i in enumerate(self.ids)})

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, label_id: str) -> int:
        """Class index of ``label_id``; ``KeyError`` when it is not in the space."""
        return self._pos[str(label_id)]  # type: ignore[attr-defined]

    def __contains__(self, label_id: object) -> bool:
        return str(label_id) in self._pos  # type: ignore[attr-defined]

    @classmethod
    def from_labels_json(cls, data: bytes, file: str = "labels.json") -> LabelSpace:
        """CLUE ``labels.json``: JSON lines ``{"label": id, "label_desc" | "label_des": name}``.

        Blank lines are skipped; anything else that is not such an object raises
        :class:`TextFormatError` (a bad label space makes every split meaningless).
        """
        ids, names = [], []
        for no, raw, error in iter_lines(data):
            if error:
                raise TextFormatError(f"{file}:{no}: not UTF-8 ({error})")
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
                name = obj.get("label_desc", obj.get("label_des"))
                if "label" not in obj or name is None:
                    raise KeyError("label / label_desc")
            except (ValueError, AttributeError, KeyError) as exc:
                raise TextFormatError(f"{file}:{no}: expected a JSON object with 'label' and "
                                      f"'label_desc' (or 'label_des'), got {raw[:80]!r} "
                                      f"({exc})") from None
            ids.append(str(obj["label"]))
            names.append(str(name))
        if not ids:
            raise TextFormatError(f"{file}: no labels")
        try:
            return cls(ids, names)
        except ValueError as exc:
            raise TextFormatError(f"{file}: {exc}") from None


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({"file": pd.Series([], dtype=str), "line": pd.Series([], dtype="int64"),
                         "text": pd.Series([], dtype=str), "label": pd.Series([], dtype="int64"),
                         "label_id": pd.Series([], dtype=str),
                         "label_name": pd.Series([], dtype=str)})


def records_frame(rows: list[tuple[str, int, str, int, str, str]]) -> pd.DataFrame:
    """``(file, line, text, label, label_id, label_name)`` rows -> the typed frame."""
    if not rows:
        return empty_frame()
    df = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    return df.astype({"line": "int64", "label": "int64"})


def reject_rows(rows: list[tuple[str, int, str, str, str]]) -> pd.DataFrame:
    """``(file, line, reason, detail, raw)`` -> the shared rejects table (level ``record``)."""
    return rejects_frame([(f, n, "record", r, d, raw) for f, n, r, d, raw in rows],
                         REJECT_REASONS)


def iter_lines(data: bytes) -> Iterator[tuple[int, str, str | None]]:
    """``(1-based line, text, error)`` per line of ``data``; ``error`` set for invalid UTF-8
    (:func:`kexue.io.lines.decode_lines`, the project's one line decoder)."""
    for line in decode_lines(io.BytesIO(data)):
        yield line.no, line.text, line.error


@dataclass(frozen=True, eq=False)
class TextRecords:
    """Accepted records of one split, with its rejects.

    Attributes:
        frame: Columns :data:`FRAME_COLUMNS`; ``label`` int class index (``-1`` unlabelled).
        rejects: Rejected lines (``kexue.data.rejects`` table).
        read: Lines read (accepted + rejected).
        labels: The task's :class:`LabelSpace`.
        split: ``train`` / ``dev`` / ``test``.
    """

    frame: pd.DataFrame
    labels: LabelSpace
    split: str
    rejects: pd.DataFrame = field(default_factory=empty_rejects)
    read: int = -1

    def __post_init__(self) -> None:
        missing = [c for c in FRAME_COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(f"frame lacks columns {missing}")
        n, r = len(self.frame), len(self.rejects)
        if self.read < 0:
            object.__setattr__(self, "read", n + r)
        if self.read != n + r:
            raise ValueError(f"read {self.read} != accepted {n} + rejected {r}")
        lab = self.frame["label"].to_numpy()
        if len(lab) and (lab.min() < UNLABELLED or lab.max() >= len(self.labels)):
            raise ValueError(f"labels outside -1..{len(self.labels) - 1}")

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def labelled(self) -> bool:
        """True when every accepted record has a label."""
        return bool((self.frame["label"] >= 0).all())

    def report(self) -> dict:
        """Counts for an ingest report (``read == accepted + rejected``)."""
        return {"split": self.split, "read": int(self.read), "accepted": len(self.frame),
                "rejected": len(self.rejects), "by_reason": count_by_reason(self.rejects),
                "classes": len(self.labels), "duplicates": duplicates(self)}


@dataclass(frozen=True, eq=False)
class RawTextSplits:
    """A raw source as a node receives it: ``read()`` it, unless ``unavailable`` says why not."""

    name: str
    read: Callable[[], dict[str, TextRecords]]
    unavailable: str | None = None


def overlap(train: TextRecords, dev: TextRecords) -> dict:
    """Dev records whose ``text`` also occurs (exactly) in train.

    Returns:
        ``rows`` -- dev rows whose text is in train; ``distinct`` -- distinct such texts;
        ``keep`` -- boolean mask over ``dev.frame`` of the rows NOT in train;
        ``keep_index`` -- their positions (``numpy`` int array).
    """
    seen = set(train.frame["text"])
    in_train = dev.frame["text"].isin(seen).to_numpy()
    keep = ~in_train
    return {"rows": int(in_train.sum()),
            "distinct": int(dev.frame["text"][in_train].nunique()),
            "keep": keep, "keep_index": np.flatnonzero(keep)}


def duplicates(records: TextRecords) -> int:
    """Rows whose ``text`` repeats an earlier row of the same split."""
    return int(records.frame["text"].duplicated().sum())
