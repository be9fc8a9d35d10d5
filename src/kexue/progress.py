"""Progress for long loops (a 400k-entity KB ingest, big corpora): a tqdm bar on a terminal,
nothing at all otherwise, so cron, Airflow and CI logs carry no carriage-return noise.

``training.enable_progress_bar: auto`` (Lightning's bar) uses the same rule, :func:`on_terminal`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def on_terminal() -> bool:
    """stderr is a terminal and ``CI`` is unset."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) and not os.environ.get("CI")


def track(items: Iterable[T], desc: str, unit: str = "it") -> Iterable[T] | Iterator[T]:
    """``items`` wrapped in a tqdm bar on a terminal (:func:`on_terminal`); otherwise
    ``items`` itself, untouched."""
    if not on_terminal():
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit=unit, unit_scale=True, leave=False,
                mininterval=0.5, dynamic_ncols=True)
