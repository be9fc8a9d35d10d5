"""``params:text_classification``'s top level: the adversarial-training comparison on text, checked before the first node
(:class:`kexue.config.Section`)."""

from __future__ import annotations

from dataclasses import dataclass

from kexue.config import Section


@dataclass
class Parameters:
    """Keys of ``conf/*/parameters_text_classification.yml``; sections are checked where read."""

    cpu_threads: int = 0  # torch intra-op threads inside these nodes (0 = torch's default)
    data: Section = None  # DataConfig
    model: Section = None  # ClassifierConfig
    trainer: Section = None  # TrainerConfig
    optimizer: Section = None  # OptimizerConfig
    experiment: Section = None  # ExperimentConfig
    methods: Section = None  # method name -> MethodConfig
