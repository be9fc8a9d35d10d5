"""Lightning's external-callback entry-point scan, done once per process instead of per Trainer.

Every ``L.Trainer(...)`` calls ``lightning.fabric.utilities.registry._load_external_callbacks``
for the ``lightning.pytorch.callbacks_factory`` entry-point group, and that calls
``importlib.metadata.entry_points(group=...)``, which reads the metadata of EVERY installed
distribution (about 200 in this project's venv): 13-19 ms of wall time per construction on the
2-core CPU machine against 1.0-1.3 ms with the memo (``trainer_construction_ms`` of
``bench/bench_framework_overhead.py``, four runs), paid once per fit and once per Trainer in the
test suite.

:func:`cached_entry_point_scan` swaps the ``entry_points`` name that Lightning's registry module
calls for a per-process memo of the group's entry points while a Trainer is constructed.
Lightning's own loader still runs: every factory is loaded and CALLED for every Trainer, so each
Trainer gets fresh callback instances, in the same order, with the same log line. What is
remembered is only the list of entry points of the installed distributions, which changes only
when a package is installed or removed while the process runs (call
:func:`clear_entry_point_cache` then). When Lightning's registry module no longer has that
name, or something else (a test's ``mock.patch``) has already replaced it, nothing is swapped
and Lightning's call goes where it went before.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import threading
from collections.abc import Iterator
from typing import Any

from lightning.fabric.utilities import registry

__all__ = ["cached_entry_point_scan", "clear_entry_point_cache"]

_LOCK = threading.RLock()  # re-entrant: a callback factory may itself build a Trainer
_SCAN = importlib.metadata.entry_points  # the real scan, whatever the registry module holds


@functools.lru_cache(maxsize=None)
def _group(group: str) -> importlib.metadata.EntryPoints:
    """The entry points of ``group`` over all installed distributions (scanned once)."""
    return _SCAN(group=group)


def _entry_points(**params: Any) -> Any:
    """``importlib.metadata.entry_points`` with the ``group=`` lookup memoised; any other call
    goes to the real scan."""
    if set(params) == {"group"}:
        return _group(params["group"])
    return _SCAN(**params)


def clear_entry_point_cache() -> None:
    """Forget the memoised entry points (after installing or removing a package in-process)."""
    _group.cache_clear()


@contextlib.contextmanager
def cached_entry_point_scan() -> Iterator[None]:
    """While active, Lightning's external-callback loader reads the memoised entry points.

    Restores the registry module's own ``entry_points`` on exit (also on error); a lock keeps
    concurrent Trainer constructions from restoring each other's swap out of order.
    """
    with _LOCK:
        original = getattr(registry, "entry_points", None)
        if original is not _SCAN:  # Lightning changed, or someone else's patch: leave it be
            yield
            return
        registry.entry_points = _entry_points
        try:
            yield
        finally:
            registry.entry_points = original
