"""One section of the run report: plain data (dicts, lists, bytes), so it pickles and travels as
a Kedro dataset between the section nodes and the assembling node.

A section is ``{"key", "title", "status", "note", "blocks", "ingest"}``:

* ``status`` -- ``"this run"`` (its main dataset was written by this ``kedro run``),
  ``"earlier run"`` (read from disk, written by an earlier run) or ``"not run"`` (absent);
* ``blocks`` -- in order, each ``{"kind": "markdown", "text"}``, ``{"kind": "table", "caption",
  "columns", "rows"}`` or ``{"kind": "figure", "name", "caption", "png"}`` (PNG bytes);
* ``ingest`` -- for ingestion pipelines, ``{"read", "accepted", "rejected", "by_reason"}``,
  gathered into the report's rejects summary.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from kexue.io.png import PNG_MAGIC

STATUSES = ("this run", "earlier run", "not run")


def status_of(main: Any, name: str, run: dict[str, Any]) -> str:
    """The section's status from its main input: ``None`` (the reporting hook found no file)
    means not run; otherwise whether this run's pipeline produced ``name``."""
    if main is None:
        return "not run"
    return "this run" if name in set(run.get("produced", ())) else "earlier run"


def section(key: str, title: str, status: str, blocks: list[dict[str, Any]] | None = None,
            note: str = "", ingest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build a section (validating the status and the blocks)."""
    if status not in STATUSES:
        raise ValueError(f"section {key!r}: status {status!r} is not one of {STATUSES}")
    blocks = [b for b in (blocks or []) if b is not None]
    for b in blocks:
        if b.get("kind") not in ("markdown", "table", "figure"):
            raise ValueError(f"section {key!r}: unknown block kind {b.get('kind')!r}")
    return {"key": key, "title": title, "status": status, "note": note, "blocks": blocks,
            "ingest": ingest}


def markdown(text: str | None) -> dict[str, Any] | None:
    """A markdown block (``None`` when there is no text)."""
    return {"kind": "markdown", "text": text} if text else None


def table(frame: pd.DataFrame | None, caption: str, max_rows: int = 50,
          digits: int = 4) -> dict[str, Any] | None:
    """A table block from a DataFrame (first ``max_rows`` rows, floats rounded)."""
    if frame is None or len(frame) == 0:
        return None
    shown = frame.head(max_rows)
    rows = [[_cell(v, digits) for v in row] for row in shown.itertuples(index=False)]
    more = len(frame) - len(shown)
    return {"kind": "table", "caption": caption + (f" (first {len(shown)} of {len(frame)} rows)"
                                                   if more else ""),
            "columns": [str(c) for c in shown.columns], "rows": rows}


def figure(png: bytes | None, name: str, caption: str) -> dict[str, Any] | None:
    """A figure block from PNG bytes (``None`` when there is no figure)."""
    if png is None:
        return None
    if not bytes(png).startswith(PNG_MAGIC):
        raise ValueError(f"figure {name!r}: not PNG bytes")
    return {"kind": "figure", "name": name, "caption": caption, "png": bytes(png)}


def _cell(value: Any, digits: int) -> Any:
    if isinstance(value, float):
        return None if value != value else round(value, digits)
    if hasattr(value, "item"):          # numpy scalar
        return _cell(value.item(), digits)
    if isinstance(value, (list, dict, tuple)):
        return str(value)
    return value
