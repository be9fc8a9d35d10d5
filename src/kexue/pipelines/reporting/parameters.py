"""``params:reporting``'s top level: the run report, checked before the first node
(:class:`kexue.config.Section`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Parameters:
    """Keys of ``conf/*/parameters_reporting.yml``; sections are checked where read."""

    title: str = "kexue run report"  # heading of the HTML page and its markdown twin
    title_samples: int = 8  # generated titles shown beside their references
