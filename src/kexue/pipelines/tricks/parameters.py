"""``params:tricks``'s top level: the five MLP runs and their report, checked before the first node
(:class:`kexue.config.Section`)."""

from __future__ import annotations

from dataclasses import dataclass

from kexue.config import Section


@dataclass
class Parameters:
    """Keys of ``conf/*/parameters_tricks.yml``; sections are checked where read."""

    data: Section = None  # DataConfig
    model: Section = None  # MLPConfig
    trainer: Section = None  # TrainerConfig shared by the runs
    optimizer: Section = None  # OptimizerConfig shared by the runs
    runs: Section = None  # run name -> RunConfig
    report: Section = None  # ReportConfig
