"""``TextLinesDataset``: stream a raw text file line by line, or an embedded default.

Raw corpora can be large (the CCKS ``kb_data`` is 367 MB), so ``load()`` returns a lazy
:class:`LineSource` instead of the contents. Iterating it yields :class:`Line` records with the
1-based line number and the decoded text; a line that is not valid UTF-8 is yielded with
``error`` set instead of aborting the read, so readers can send it to their rejects table.

When the file does not exist and ``fallback`` names a generator (``"module:function"``), the
source iterates that generator's lines instead: this is how every pipeline runs on a fresh clone.
``allow_fallback: ${globals:embedded_defaults}`` (false under ``--env gpu``) turns that off: a
missing file is then an error naming the path, never a silent switch to synthetic data.
``optional: true`` makes a missing file (with no fallback) an empty source with
``exists = False`` instead of an error, for inputs a parameter may leave unused.

Catalog example::

    ccks_kb_raw:
      type: kexue.io.TextLinesDataset
      filepath: data/01_raw/ccks2019_el/kb_data
      fallback: kexue.data.ccks.generate:default_kb_lines
      fallback_args: {n_entities: 3000, seed: 0}
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from kedro.io import AbstractDataset, DatasetError


class Line(NamedTuple):
    """One raw line: 1-based ``no``, decoded ``text`` (no trailing newline), decode ``error``."""

    no: int
    text: str
    error: str | None = None


@dataclass
class LineSource:
    """A re-iterable, lazy sequence of :class:`Line` from a file or an embedded generator.

    Attributes:
        path: File path, or ``<embedded:module:function>`` for the generated default.
        is_default: True when the lines come from the embedded generator.
    """

    path: str
    is_default: bool
    _factory: Callable[[], Iterable[Any]]
    exists: bool = True

    def __iter__(self) -> Iterator[Line]:
        return decode_lines(self._factory())


def decode_lines(raw_lines: Iterable[bytes | str]) -> Iterator[Line]:
    """The project's one line decoder: numbered :class:`Line` records from raw lines (a binary
    file handle, ``io.BytesIO(data)``, or already decoded strings).

    Line ``n`` is the ``n``-th ``\\n``-terminated line (a final newline starts no line; ``\\r``
    of CRLF is dropped; other separators such as ``\\x0b`` or ``\\u2028`` stay inside the
    line, so every reader numbers a file's lines alike); a UTF-8 BOM on line 1 is dropped;
    invalid UTF-8 gives the line decoded with replacement characters and ``error`` set.
    """
    for no, raw in enumerate(raw_lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Line(no, raw.decode("utf-8", errors="replace").rstrip("\r\n"),
                           f"invalid UTF-8: {exc.reason} at byte {exc.start}")
                continue
        else:
            text = raw
        if no == 1:
            text = text.lstrip("\ufeff")  # tolerate a UTF-8 BOM
        yield Line(no, text.rstrip("\r\n"))


def _resolve(spec: str) -> Callable[..., Iterable[str]]:
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise DatasetError(f"fallback {spec!r} must look like 'package.module:function'")
    return getattr(importlib.import_module(module_name), attr)


class TextLinesDataset(AbstractDataset[None, LineSource]):
    """Read-only dataset returning a :class:`LineSource` over ``filepath`` (or its fallback)."""

    def __init__(self, *, filepath: str, fallback: str | None = None,
                 fallback_args: dict[str, Any] | None = None, allow_fallback: bool = True,
                 optional: bool = False, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self._fallback = fallback
        self._fallback_args = dict(fallback_args or {})
        self._allow_fallback = bool(allow_fallback)
        self._optional = bool(optional)
        self.metadata = metadata

    @property
    def filepath(self) -> Path:
        return self._filepath

    def preflight(self) -> str | None:
        """What is wrong before any node runs (a missing file that may not fall back), or None."""
        if self._filepath.is_file() or self._optional:
            return None
        if self._fallback and self._allow_fallback:
            return None
        return self._missing_message()

    def optional_missing(self) -> bool:
        """True for an ``optional`` input whose file is absent (loads as an empty source)."""
        return self._optional and not self._filepath.is_file()

    def _missing_message(self) -> str:
        if self._fallback:
            return (f"Raw file {self._filepath} not found, and this env does not allow the embedded "
                    f"default ({self._fallback}) in place of real data (globals "
                    "embedded_defaults: false, as under --env gpu). Fix: put the official file at "
                    f"{self._filepath}, run in the base env for the embedded default, or set "
                    "embedded_defaults: true in conf/<env>/globals.yml to use it deliberately.")
        return (f"Raw file {self._filepath} not found and no embedded fallback is configured. "
                f"Fix: put the official file at {self._filepath}, or set `fallback:` in the "
                "catalog.")

    def load(self) -> LineSource:
        if self._filepath.is_file():
            path = self._filepath

            def read_file() -> Iterator[bytes]:
                with path.open("rb") as handle:
                    yield from handle

            return LineSource(str(path), False, read_file)
        if self._fallback and self._allow_fallback:
            generator = _resolve(self._fallback)
            args = self._fallback_args
            return LineSource(f"<embedded:{self._fallback}>", True, lambda: generator(**args))
        if self._optional and not self._fallback:
            return LineSource(str(self._filepath), False, lambda: iter(()), exists=False)
        raise DatasetError(self._missing_message())

    def save(self, data: None) -> None:
        raise DatasetError("TextLinesDataset is read-only: raw data is never written by pipelines")

    def _exists(self) -> bool:
        return self._filepath.is_file() or (self._fallback is not None and self._allow_fallback)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "fallback": self._fallback,
                "allow_fallback": self._allow_fallback, "optional": self._optional}
