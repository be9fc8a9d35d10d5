"""``params:nvae``'s top level: the NVAE and baseline VAE runs, checked before the first node
(:class:`kexue.config.Section`)."""

from __future__ import annotations

from dataclasses import dataclass

from kexue.config import Section


@dataclass
class Parameters:
    """Keys of ``conf/*/parameters_nvae.yml``; sections are checked where read."""

    cpu_threads: int = 0  # torch intra-op threads inside these nodes (0 = torch's default)
    batch_size: int = 64  # training batch size of both models
    model: Section = None  # NVAEConfig
    baseline: Section = None  # VAEConfig
    trainer: Section = None  # TrainerConfig
    optimizer: Section = None  # OptimizerConfig
    evaluation: Section = None  # EvalConfig
