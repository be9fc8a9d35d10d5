"""ChnSentiCorp (Baidu LUGE / PaddleNLP release) TSV files, exactly as published.

UTF-8, LF, one header line, no quoting; label ``1`` = positive, ``0`` = negative. The real headers
differ per split (see the release's SOURCE.txt):

* ``train.tsv`` -- ``label<TAB>text_a``;
* ``dev.tsv`` -- ``qid<TAB>label<TAB>text_a``;
* ``test.tsv`` -- ``qid<TAB>text_a``: NO labels (``label = -1``, ``label_id``/``label_name`` empty).

``train`` / ``dev`` accept either labelled header; ``test`` accepts the unlabelled one too. Any
other first line is a whole-file defect: :class:`~kexue.data.textcls.records.TextFormatError`
naming the file and the expected header(s). After the header, bad lines are rejects with their
1-based line (the header is line 1): ``invalid_utf8``, ``blank_line``, ``field_count`` (not the
header's number of fields, e.g. a TAB inside the text), ``bad_label`` (not ``0``/``1``),
``empty_text``. ``qid`` is not kept (``line`` locates the record).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from kexue.data.textcls.records import (
    UNLABELLED,
    LabelSpace,
    RawTextSplits,
    TextFormatError,
    TextRecords,
    iter_lines,
    records_frame,
    reject_rows,
)

LABELS = LabelSpace(["0", "1"], ["negative", "positive"])
LABELLED_HEADERS = (("label", "text_a"), ("qid", "label", "text_a"))
UNLABELLED_HEADERS = (("qid", "text_a"),)
SPLIT_FILES = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}


def headers_for(split: str) -> tuple[tuple[str, ...], ...]:
    """The headers a split may have (labelled ones for train / dev, plus unlabelled for test)."""
    return LABELLED_HEADERS + (UNLABELLED_HEADERS if split == "test" else ())


def parse_chnsenticorp(data: bytes, file: str, split: str) -> TextRecords:
    """One ChnSentiCorp TSV -> :class:`TextRecords` (raises only on a wrong header)."""
    allowed = headers_for(split)
    want = " or ".join(repr("\t".join(h)) for h in allowed)
    lines = iter_lines(data)
    first = next(lines, None)
    if first is None:
        raise TextFormatError(f"{file}: empty file, expected {want}")
    _, head, error = first
    header = tuple(head.split("\t"))
    if error or header not in allowed:
        raise TextFormatError(f"{file}: header {head[:80]!r}, expected {want} for the {split} "
                              "split. Fix: give the official ChnSentiCorp file of that split.")
    width = len(header)
    text_col = header.index("text_a")
    label_col = header.index("label") if "label" in header else None
    rows, rejects = [], []
    for no, raw, error in lines:
        if error:
            rejects.append((file, no, "invalid_utf8", error, raw))
            continue
        if not raw.strip():
            rejects.append((file, no, "blank_line", "empty line", raw))
            continue
        fields = raw.split("\t")
        if len(fields) != width:
            rejects.append((file, no, "field_count", f"got {len(fields)} fields, the header "
                            f"has {width}", raw))
            continue
        text = fields[text_col]
        if label_col is None:
            label, label_id, name = UNLABELLED, "", ""
        else:
            label_id = fields[label_col]
            if label_id not in LABELS:
                rejects.append((file, no, "bad_label", f"label {label_id!r} is not 0 or 1", raw))
                continue
            label = LABELS.index(label_id)
            name = LABELS.names[label]
        if not text.strip():
            rejects.append((file, no, "empty_text", "'text_a' is empty", raw))
            continue
        rows.append((file, no, text, label, label_id, name))
    return TextRecords(records_frame(rows), LABELS, split, reject_rows(rejects),
                       read=len(rows) + len(rejects))


class ChnSentiCorpDataset(AbstractDataset[None, RawTextSplits]):
    """``train.tsv`` / ``dev.tsv`` / ``test.tsv`` of a folder, read lazily into splits.

    Args:
        path: Folder with the official file names (at least ``train.tsv``).
        metadata: Kedro-Viz metadata.
    """

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path, self.metadata = Path(path), metadata

    def preflight(self) -> str | None:
        """None when ``train.tsv`` exists; otherwise what is missing."""
        if (self._path / SPLIT_FILES["train"]).is_file():
            return None
        return (f"ChnSentiCorp: train.tsv not found in {self._path} (expected train.tsv, dev.tsv, "
                "test.tsv). Fix: put the official files there, or choose another source.")

    def _read(self) -> dict[str, TextRecords]:
        reason = self.preflight()
        if reason:
            raise DatasetError(reason)
        return {split: parse_chnsenticorp((self._path / name).read_bytes(), name, split)
                for split, name in SPLIT_FILES.items() if (self._path / name).is_file()}

    def load(self) -> RawTextSplits:
        return RawTextSplits("chnsenticorp", self._read, self.preflight())

    def save(self, data: None) -> None:
        raise DatasetError("ChnSentiCorpDataset is read-only: raw data is never written")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
