"""Row-level rejects for image tables: malformed records out, the rest validated.

:func:`split_rejects` takes a :class:`~kexue.data.images.table.RawImageTable` (what
``EmbeddedImagesDataset`` loads) and returns the accepted table (checked by the pandera
:func:`~kexue.data.images.table.image_schema`), a rejects table and the counts. Nothing is lost:
``read == accepted + rejected``.

Rejects are the shared table of :mod:`kexue.data.rejects` (``file, line, level, reason, detail,
record``): ``line`` is the 1-based line of the CSV (header = line 1; an embedded table's row ``i``
is line ``i + 2``), ``record`` the raw text (truncated to 200 characters), ``reason`` a stable
code (one per record, the first that applies, in this order) from :data:`REJECT_REASONS` and
``detail`` the specifics.

Table-level problems (no header, missing / extra / misordered columns, no record left) are not
rejects: they raise :class:`~kexue.data.images.table.ImageTableError` naming the file and the fix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kexue.data.images.table import (
    N_CLASSES,
    ImageTableError,
    RawImageTable,
    Source,
    pixel_columns,
    spec_for,
    validate_images,
)
from kexue.data.rejects import RECORD_MAX_CHARS, rejects_frame

REJECT_REASONS = {
    "invalid_utf8": "the line is not valid UTF-8",
    "field_count": "the line does not have one field per header column (blank lines included)",
    "bad_label": "label missing, non-numeric, not a whole number or outside 0..9",
    "pixel_missing": "a pixel is empty or NaN",
    "pixel_non_numeric": "a pixel is not a number",
    "pixel_out_of_range": "a pixel is below 0 or above the source's pixel_max (inf included)",
    "pixel_not_whole": "a pixel is not a whole grey level (e.g. 2.5)",
}
_MISSING_TOKENS = ("", "nan", "na", "n/a", "null", "none")


def check_header(columns: tuple[str, ...], source: Source, file: str) -> None:
    """Fail fast unless the header is exactly ``px000..px{n-1}, label``.

    Raises:
        ImageTableError: Naming the file, the missing / unexpected / duplicated columns (or the
            order problem) and the fix.
    """
    spec = spec_for(source)
    expected = [*pixel_columns(spec.n_pixels), "label"]
    if list(columns) == expected:
        return
    fix = (f"Fix: line 1 of {file} must be px000,px001,...,px{spec.n_pixels - 1:03d},label "
           f"({spec.n_pixels} pixel columns then the label, {spec.side}x{spec.side} images of "
           f"source {source!r}), or set tricks.data.source to the source this file holds.")
    if not columns:
        raise ImageTableError(f"{file}: the file is empty or line 1 (the header) is blank. {fix}")
    problems = []
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    dupes = sorted({c for c in columns if list(columns).count(c) > 1})
    if missing:
        problems.append(f"{len(missing)} missing column(s) {missing[:5]}"
                        f"{' ...' if len(missing) > 5 else ''}")
    if extra:
        problems.append(f"{len(extra)} unexpected column(s) {extra[:5]}"
                        f"{' ...' if len(extra) > 5 else ''}")
    if dupes:
        problems.append(f"duplicated column(s) {dupes[:5]}")
    if not problems:
        first = next(i for i, (a, b) in enumerate(zip(columns, expected)) if a != b)
        problems.append(f"columns out of order (position {first + 1} is {columns[first]!r}, "
                        f"expected {expected[first]!r})")
    raise ImageTableError(f"{file}: the header (line 1) does not match the {source!r} image "
                          f"layout: {'; '.join(problems)}. {fix}")


def _to_numbers(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cells -> ``(values float64, non_numeric bool)``; missing cells: NaN, not non-numeric."""
    if cells.dtype.kind in "fiub":
        return cells.astype(np.float64), np.zeros(cells.shape, dtype=bool)
    try:                                       # fast path: every cell parses (numpy's parser)
        return cells.astype(np.float64), np.zeros(cells.shape, dtype=bool)
    except (TypeError, ValueError):
        flat = pd.Series(cells.ravel(), dtype=object)
        values = pd.to_numeric(flat, errors="coerce").to_numpy(dtype=np.float64)
        tokens = flat.astype(str).str.strip().str.lower()
        missing = flat.isna().to_numpy() | tokens.isin(_MISSING_TOKENS).to_numpy()
        return values.reshape(cells.shape), (np.isnan(values) & ~missing).reshape(cells.shape)


def _cell_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _record_text(row: np.ndarray) -> str:
    return ",".join(_cell_text(v) for v in row)[:RECORD_MAX_CHARS]


def split_rejects(raw: RawImageTable, source: Source
                  ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Split ``raw`` into accepted images and rejected records; count both.

    Args:
        raw: The loaded table (``EmbeddedImagesDataset``).
        source: ``mnist`` or ``digits``: the expected layout and pixel range.

    Returns:
        ``(accepted, rejects, counts)``: the accepted table validated by the pandera schema
        (uint8 pixels, int64 ``label``, fresh index); the rejects table (``file, line, reason,
        record``, sorted by line); ``counts`` = ``{"file", "source", "read", "accepted",
        "rejected", "by_reason": {code: n}}`` with ``read == accepted + rejected``.

    Raises:
        ImageTableError: Table-level problems: wrong header (see :func:`check_header`) or no
            record left after the rejects (the message lists the reasons and a few lines).
    """
    spec = spec_for(source)
    check_header(raw.columns, source, raw.file)
    found: list[tuple[int, str, str, str]] = []              # (line, code, detail, record)
    for m in raw.malformed.itertuples(index=False):
        if m.n_fields < 0:
            found.append((m.line, "invalid_utf8", m.error, m.record))
        else:
            got = "0 (blank line)" if not str(m.record).strip() else str(m.n_fields)
            found.append((m.line, "field_count",
                          f"expected {spec.n_pixels + 1} fields, got {got}", m.record))

    cells = raw.rows.to_numpy()                                # (N, P + 1) raw cells
    values, non_numeric = _to_numbers(cells)
    pixels, label = values[:, :spec.n_pixels], values[:, spec.n_pixels]
    with np.errstate(invalid="ignore"):
        bad_label = ~(np.isin(label, np.arange(N_CLASSES)))   # NaN, 2.5, 10, -1 -> True
        checks = {                                             # (N, P) masks, in priority order
            "pixel_missing": np.isnan(pixels) & ~non_numeric[:, :spec.n_pixels],
            "pixel_non_numeric": non_numeric[:, :spec.n_pixels],
            "pixel_out_of_range": (pixels < 0) | (pixels > spec.pixel_max),
            "pixel_not_whole": np.isfinite(pixels) & (pixels % 1 != 0),
        }
    names = pixel_columns(spec.n_pixels)
    lines = raw.rows.index.to_numpy()
    bad_pixel = np.logical_or.reduce(list(checks.values()))   # (N, P)
    rejected = bad_label | bad_pixel.any(axis=1)
    for i in np.flatnonzero(rejected):
        if bad_label[i]:
            code = "bad_label"
            detail = f"label={_cell_text(cells[i, -1])!r} is not an integer in 0..9"
        else:
            code, mask = next((c, m[i]) for c, m in checks.items() if m[i].any())
            j = int(np.flatnonzero(mask)[0])
            n_bad = int(bad_pixel[i].sum())
            detail = (f"{names[j]}={_cell_text(cells[i, j])!r} (allowed: whole grey levels "
                      f"0..{spec.pixel_max}; {n_bad} bad pixel(s) in this record)")
        found.append((int(lines[i]), code, detail, _record_text(cells[i])))

    found.sort(key=lambda r: r[0])
    rejects = rejects_frame(((raw.file, r[0], "record", r[1], r[2], str(r[3])) for r in found),
                            codes=REJECT_REASONS)
    by_reason = {code: n for code in REJECT_REASONS
                 if (n := sum(r[1] == code for r in found))}
    counts = {"file": raw.file, "source": source, "read": raw.n_records,
              "accepted": int((~rejected).sum()), "rejected": len(found), "by_reason": by_reason}
    if counts["read"] != counts["accepted"] + counts["rejected"]:   # conservation, by construction
        raise AssertionError(f"image ingest lost records: {counts}")
    if counts["accepted"] == 0:
        examples = "; ".join(f"line {r[0]}: {r[1]}: {r[2]}" for r in found[:3])
        raise ImageTableError(
            f"{raw.file}: no image record left: read {counts['read']}, rejected "
            f"{counts['rejected']} (by reason: {by_reason or 'none, the file has no records'})"
            f"{'; e.g. ' + examples if examples else ''}. Fix: give the file records of "
            f"{spec.n_pixels} whole grey levels 0..{spec.pixel_max} then a label 0..9 "
            f"(one per line after the header), or set tricks.data.source to the source it holds.")
    accepted = pd.DataFrame(values[~rejected], columns=list(raw.columns))   # parsed numbers
    return validate_images(accepted, source), rejects, counts
