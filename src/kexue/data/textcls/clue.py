"""CLUE TNEWS / IFLYTEK and FewCLUE IFLYTEK JSON-lines files, exactly as published.

Formats (one JSON object per line, UTF-8):

* **TNEWS** ``{"label": "108", "label_desc": "news_edu", "sentence": ..., "keywords": ...}``;
  ids ``100..116`` without 105 / 111 (15 classes).
* **IFLYTEK** (CLUE) ``{"label": "110", "label_des": "社区超市", "sentence": ...}``;
  ids ``"0".."118"``.
* **FewCLUE IFLYTEK** ``{"label": 10, "label_des": "社区服务", "sentence": ..., "id": 221}``:
  ``label`` is an int. It is read as the label *id* (``str(label)``) and mapped through
  ``labels.json`` like the CLUE files. For IFLYTEK both readings agree: ``labels.json`` lists
  ids ``"0".."118"`` in order, so id == position, and every FewCLUE record's ``label_des`` equals
  labels.json's name for that id (checked on the real files: 0 mismatches).

The text is ``sentence`` unchanged. The class index is the position of the id in ``labels.json``
(:class:`~kexue.data.textcls.records.LabelSpace`). Every bad line is a rejects row with its 1-based
line: ``invalid_utf8``, ``blank_line``, ``invalid_json``, ``missing_field``, ``empty_text``,
``unknown_label`` (id not in labels.json) and ``label_mismatch`` (the record's ``label_desc`` /
``label_des`` contradicts labels.json).

:class:`ClueDataset` is the read-only Kedro dataset over a task folder; ``load()`` reads nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from kexue.data.textcls.records import (
    LabelSpace,
    RawTextSplits,
    TextRecords,
    iter_lines,
    records_frame,
    reject_rows,
)

# task -> [(split, file name, required)]; the first required file must exist for the task.
TASKS: dict[str, list[tuple[str, str, bool]]] = {
    "tnews": [("train", "train.json", True), ("dev", "dev.json", True)],
    "iflytek": [("train", "train.json", False), ("dev", "dev.json", True)],
    # FewCLUE's public test is labelled (1,749 records); it is its own split, not CLUE's dev.
    "fewclue_iflytek": [("train", "fewclue_train_few_all.json", True),
                        ("test", "fewclue_test_public.json", False)],
}
LABELS_FILE = "labels.json"


def parse_clue(data: bytes, file: str, labels: LabelSpace, split: str) -> TextRecords:
    """One CLUE / FewCLUE JSON-lines file -> :class:`TextRecords` (never raises on bad lines)."""
    rows, rejects = [], []
    for no, raw, error in iter_lines(data):
        if error:
            rejects.append((file, no, "invalid_utf8", error, raw))
            continue
        if not raw.strip():
            rejects.append((file, no, "blank_line", "empty line", raw))
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            rejects.append((file, no, "invalid_json", f"{exc}", raw))
            continue
        if not isinstance(obj, dict):
            rejects.append((file, no, "invalid_json", f"a JSON {type(obj).__name__}, not an "
                            "object", raw))
            continue
        label, text = obj.get("label"), obj.get("sentence")
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            rejects.append((file, no, "missing_field", "no string / int 'label'", raw))
            continue
        if not isinstance(text, str):
            rejects.append((file, no, "missing_field", "no string 'sentence'", raw))
            continue
        if not text.strip():
            rejects.append((file, no, "empty_text", "'sentence' is empty", raw))
            continue
        label_id = str(label)
        if label_id not in labels:
            rejects.append((file, no, "unknown_label", f"label {label_id!r} not in "
                            f"{LABELS_FILE} ({len(labels)} ids)", raw))
            continue
        k = labels.index(label_id)
        name = obj.get("label_desc", obj.get("label_des"))
        if name is not None and str(name) != labels.names[k]:
            rejects.append((file, no, "label_mismatch", f"label {label_id!r} is named "
                            f"{name!r} here but {labels.names[k]!r} in {LABELS_FILE}", raw))
            continue
        rows.append((file, no, text, k, label_id, labels.names[k]))
    return TextRecords(records_frame(rows), labels, split, reject_rows(rejects),
                       read=len(rows) + len(rejects))


class ClueDataset(AbstractDataset[None, RawTextSplits]):
    """The files of one CLUE task folder, read lazily into ``{split: TextRecords}``.

    Args:
        path: Folder with ``labels.json`` and the official file names (see :data:`TASKS`).
        task: ``tnews``, ``iflytek`` or ``fewclue_iflytek``.
        metadata: Kedro-Viz metadata.
    """

    def __init__(self, *, path: str, task: str = "tnews",
                 metadata: dict[str, Any] | None = None) -> None:
        if task not in TASKS:
            raise DatasetError(f"ClueDataset task {task!r}: use one of {sorted(TASKS)}")
        self._path, self._task, self.metadata = Path(path), task, metadata

    def preflight(self) -> str | None:
        """None when labels.json and the required split files exist; otherwise what is missing."""
        need = [LABELS_FILE] + [name for _, name, req in TASKS[self._task] if req]
        missing = [n for n in need if not (self._path / n).is_file()]
        if not missing:
            return None
        return (f"CLUE {self._task}: {', '.join(missing)} not found in {self._path}. Fix: put the "
                f"official files there (see SOURCE.txt of the task), or choose another source.")

    def _read(self) -> dict[str, TextRecords]:
        reason = self.preflight()
        if reason:
            raise DatasetError(reason)
        labels = LabelSpace.from_labels_json((self._path / LABELS_FILE).read_bytes(),
                                             str(self._path / LABELS_FILE))
        out = {}
        for split, name, _ in TASKS[self._task]:
            f = self._path / name
            if f.is_file():
                out[split] = parse_clue(f.read_bytes(), name, labels, split)
        return out

    def load(self) -> RawTextSplits:
        return RawTextSplits(self._task, self._read, self.preflight())

    def save(self, data: None) -> None:
        raise DatasetError("ClueDataset is read-only: raw data is never written")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "task": self._task}
