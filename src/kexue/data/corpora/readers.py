"""Readers for the real title-generation corpora (CSL, LCSTS, THUCNews) and a lazy raw dataset.

Formats (as published; see ``../shared/data-samples/README.md``):

* **CSL** (ydli-ai/CSL ``benchmark/ts/*.tsv``): ``to title<TAB>abstract<TAB>title``; the CLGE copy
  uses ``title<TAB>abstract``. ``layout: auto`` decides per line by the column count (3 -> the
  first column must be the task prefix ``to title``, else the line is a ``field_count`` reject:
  a tab inside a CLGE field; 2 -> title first).
* **LCSTS** (CLGE): ``summary<TAB>text``.
* **THUCNews**: one article per file ``<category>/<id>.txt``; line 1 is the title, the body is the
  remaining lines (stripped, blank lines dropped, joined without separator: Chinese text).

Every reader yields :class:`RawPair` or :class:`Reject` records, never raises on bad data.
Reject reasons are the stable codes of :data:`REJECT_REASONS` (``invalid_utf8``, ``blank_line``,
``header_line``, ``field_count``, ``empty_title``, ``empty_source``); the ingest step adds
``source_too_long`` and ``duplicate``.

:class:`RawCorpusDataset` is a read-only Kedro dataset over a folder + glob. ``load()`` lists
and opens nothing: it returns a :class:`RawCorpus` whose ``files()`` globs lazily and whose
``lines(file)`` streams one file (bytes -> :class:`kexue.io.Line`, invalid UTF-8 flagged). A missing
folder is *not* an error at load time, so a run on the embedded default does not need the real
corpora; the node that selects a corpus fails fast when its files are absent.
We use this instead of ``partitions.PartitionedDataset`` + ``text.TextDataset`` because the latter
decodes strictly (one bad byte aborts the run instead of producing a reject) and raises on a
missing folder even when that corpus is not selected.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kedro.io import AbstractDataset, DatasetError

from kexue.data.corpora.schemas import RECORD_MAX_CHARS
from kexue.io.lines import Line, LineSource
from kexue.progress import track

Layout = Literal["auto", "to_title", "title_abstract"]
LAYOUTS: tuple[str, ...] = ("auto", "to_title", "title_abstract")
CSL_PREFIX = "to title"  # column 1 of every line of CSL's benchmark/ts layout
HEADER_WORDS = frozenset({"to title", "title", "abstract", "summary", "text", "content",
                          "source", "target", "label", "prefix", "src", "tgt"})


@dataclass(frozen=True)
class RawPair:
    """One parsed pair before length limits: ``target`` is the title/summary."""

    file: str
    line: int
    target: str
    source: str
    record: str


# Stable reason codes of the title corpora (kexue.data.rejects); the specifics go to ``detail``.
REJECT_REASONS = {
    "invalid_utf8": "the line is not valid UTF-8",
    "blank_line": "an empty line",
    "header_line": "a header row (every field is a column name)",
    "field_count": "the TSV line does not have the layout's number of columns",
    "empty_title": "the title / summary is empty",
    "empty_source": "the text / abstract is empty",
    "source_too_long": "longer than corpus_ingest.max_source_chars",
    "duplicate": "the same (source, title) pair was read before",
}


@dataclass(frozen=True)
class Reject:
    """One malformed record: where, the stable ``reason`` code, the ``detail`` and the raw text
    (truncated to 200 chars)."""

    file: str
    line: int
    reason: str
    record: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.reason not in REJECT_REASONS:
            raise ValueError(f"unknown reject reason {self.reason!r}; use one of "
                             f"{sorted(REJECT_REASONS)}")
        object.__setattr__(self, "record", self.record[:RECORD_MAX_CHARS])

    def row(self) -> tuple[str, int, str, str, str, str]:
        """The row of the shared rejects table (``kexue.data.rejects.REJECT_COLUMNS``)."""
        return (self.file, self.line, "record", self.reason, self.detail, self.record)


Record = RawPair | Reject


def _is_header(fields: list[str]) -> bool:
    return all(f.strip().lower() in HEADER_WORDS for f in fields)


def _check_pair(file: str, no: int, target: str, source: str, raw: str) -> Record:
    target, source = target.strip(), source.strip()
    if not target:
        return Reject(file, no, "empty_title", raw, "the title / summary field is empty")
    if not source:
        return Reject(file, no, "empty_source", raw, "the text / abstract field is empty")
    return RawPair(file, no, target, source, raw)


def parse_pair_lines(lines: Iterable[Line], file: str, layout: Layout = "auto") -> Iterator[Record]:
    """Parse tab-separated pair lines (CSL or LCSTS) into records.

    Args:
        lines: :class:`kexue.io.Line` records (1-based ``no``, ``error`` for invalid UTF-8).
        file: File name reported in every record.
        layout: ``auto`` (per line: 3 columns = ``to title, abstract, title``; 2 columns =
            ``title, abstract``), ``to_title`` (3 columns required) or ``title_abstract``
            (2 columns required; also LCSTS ``summary, text``).

    Yields:
        One :class:`RawPair` or :class:`Reject` per input line (counts are conserved).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; use one of {list(LAYOUTS)}")
    for line in track(lines, f"reading {file}", unit=" lines"):
        raw = line.text
        if line.error:
            yield Reject(file, line.no, "invalid_utf8", raw, line.error)
            continue
        if not raw.strip():
            yield Reject(file, line.no, "blank_line", raw)
            continue
        fields = raw.split("\t")
        if _is_header(fields):
            yield Reject(file, line.no, "header_line", raw, f"fields {fields}")
            continue
        expected = {"auto": (2, 3), "to_title": (3,), "title_abstract": (2,)}[layout]
        if len(fields) not in expected:
            want = " or ".join(map(str, expected))
            yield Reject(file, line.no, "field_count", raw,
                         f"got {len(fields)} columns, expected {want} for layout {layout}")
            continue
        if len(fields) == 3:  # to title \t abstract \t title
            if fields[0].strip().lower() != CSL_PREFIX:
                # e.g. a CLGE ``title \t abstract`` line with a tab inside the abstract: taking
                # it as the benchmark layout would swap title and text silently
                yield Reject(file, line.no, "field_count", raw,
                             f"3 columns but column 1 is {fields[0][:20]!r}, not the CSL "
                             f"benchmark's {CSL_PREFIX!r} (a tab inside a field?)")
                continue
            yield _check_pair(file, line.no, fields[2], fields[1], raw)
        else:  # title \t abstract   |   summary \t text
            yield _check_pair(file, line.no, fields[0], fields[1], raw)


def parse_thucnews_article(lines: Iterable[Line], file: str) -> Record:
    """Parse one THUCNews article file (title on line 1, body after) into a single record."""
    title: str | None = None
    body: list[str] = []
    raw_parts: list[str] = []
    for line in lines:
        if line.error:
            return Reject(file, line.no, "invalid_utf8", line.text, line.error)
        if len(raw_parts) < 3:
            raw_parts.append(line.text)
        if title is None:
            title = line.text
        elif line.text.strip():
            body.append(line.text.strip())
    raw = "\n".join(raw_parts)
    if title is None or not title.strip():
        return Reject(file, 1, "empty_title", raw, "line 1 (the title) is empty")
    return _check_pair(file, 1, title, "".join(body), raw)


@dataclass
class RawCorpus:
    """Lazy view of the raw files ``root/glob`` (nothing is listed or read until asked).

    Attributes:
        root: The folder (or a single file) configured in the catalog.
        glob: Pattern relative to ``root`` (``*.tsv``, ``*/*.txt``; ignored for a single file).
    """

    root: Path
    glob: str = "*"

    @property
    def where(self) -> str:
        """Human-readable location used in error messages (``data/01_raw/csl/*.tsv``)."""
        return str(self.root) if self.root.is_file() else str(self.root / self.glob)

    def files(self) -> list[Path]:
        """Matching regular files, sorted (deterministic order); ``[]`` if the folder is absent."""
        if self.root.is_file():
            return [self.root]
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob(self.glob) if p.is_file())

    def iter_files(self) -> Iterator[Path]:
        """Like :meth:`files` but streaming and unsorted (cheap existence checks)."""
        if self.root.is_file():
            yield self.root
        elif self.root.is_dir():
            yield from (p for p in self.root.glob(self.glob) if p.is_file())

    def exists(self) -> bool:
        """True when at least one file matches."""
        return next(self.iter_files(), None) is not None

    @staticmethod
    def lines(path: Path) -> LineSource:
        """Stream ``path`` as :class:`kexue.io.Line` records (bytes decoded per line)."""

        def read() -> Iterator[bytes]:
            with path.open("rb") as handle:
                yield from handle

        return LineSource(str(path), False, read)


class RawCorpusDataset(AbstractDataset[None, RawCorpus]):
    """Read-only catalog entry for a raw corpus folder; ``load()`` gives a lazy :class:`RawCorpus`.

    Catalog example::

        thucnews_raw:
          type: kexue.data.corpora.RawCorpusDataset
          filepath: data/01_raw/thucnews
          glob: "*/*.txt"        # <category>/<id>.txt, one article per file
    """

    def __init__(self, *, filepath: str, glob: str = "*",
                 metadata: dict[str, Any] | None = None) -> None:
        self._root = Path(filepath)
        self._glob = glob
        self.metadata = metadata

    def load(self) -> RawCorpus:
        return RawCorpus(self._root, self._glob)

    def save(self, data: None) -> None:
        raise DatasetError("RawCorpusDataset is read-only: raw data is never written by pipelines")

    def _exists(self) -> bool:
        return RawCorpus(self._root, self._glob).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._root), "glob": self._glob}
