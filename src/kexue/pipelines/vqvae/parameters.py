"""``params:vqvae``'s top level: the VQ-VAE, its code prior and their evaluation, checked before the first node
(:class:`kexue.config.Section`)."""

from __future__ import annotations

from dataclasses import dataclass

from kexue.config import Section


@dataclass
class Parameters:
    """Keys of ``conf/*/parameters_vqvae.yml``; sections are checked where read."""

    cpu_threads: int = 0  # torch intra-op threads inside these nodes (0 = torch's default)
    model: Section = None  # VQVAEConfig
    prior_model: Section = None  # PriorConfig
    trainer: Section = None  # TrainerConfig shared by both stages
    optimizer: Section = None  # OptimizerConfig shared by both stages
    autoencoder: Section = None  # StageConfig of the autoencoder
    prior: Section = None  # StageConfig of the prior
    evaluation: Section = None  # EvalConfig
