"""Top-level keys of ``params:tricks`` (``conf/*/parameters_tricks.yml``).

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
    """``params:tricks``: the five MLP runs and their report."""

    data: Section = None  # DataConfig
    model: Section = None  # MLPConfig
    trainer: Section = None  # TrainerConfig shared by the runs
    optimizer: Section = None  # OptimizerConfig shared by the runs
    runs: Section = None  # run name -> RunConfig
    report: Section = None  # ReportConfig
