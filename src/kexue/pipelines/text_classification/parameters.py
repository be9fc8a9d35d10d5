"""Top-level keys of ``params:text_classification`` (``conf/*/parameters_text_classification.yml``).

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
    """``params:text_classification``: the adversarial-training comparison on text."""

    cpu_threads: int = 0  # torch intra-op threads inside these nodes (0 = torch's default)
    data: Section = None  # DataConfig
    model: Section = None  # ClassifierConfig
    trainer: Section = None  # TrainerConfig
    optimizer: Section = None  # OptimizerConfig
    experiment: Section = None  # ExperimentConfig
    methods: Section = None  # method name -> MethodConfig
