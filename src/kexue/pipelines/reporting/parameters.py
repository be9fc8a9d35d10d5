"""Top-level keys of ``params:reporting`` (``conf/*/parameters_reporting.yml``).

Checked before the first node of a run (:class:`kexue.hooks.PreflightHooks`) and again by the
nodes that read the top level, so a misspelt key fails at once, naming the key and the valid
ones, instead of leaving its default in place. Each section is validated by its own config
dataclass where a node reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Section = dict[str, Any] | None


@dataclass
class Parameters:
    """``params:reporting``: the run report."""

    title: str = "kexue run report"  # heading of the HTML page and its markdown twin
    title_samples: int = 8  # generated titles shown beside their references
