"""Top-level keys of ``params:vqvae`` (``conf/*/parameters_vqvae.yml``).

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
    """``params:vqvae``: the VQ-VAE, its code prior and their evaluation."""

    cpu_threads: int = 0  # torch intra-op threads inside these nodes (0 = torch's default)
    model: Section = None  # VQVAEConfig
    prior_model: Section = None  # PriorConfig
    trainer: Section = None  # TrainerConfig shared by both stages
    optimizer: Section = None  # OptimizerConfig shared by both stages
    autoencoder: Section = None  # StageConfig of the autoencoder
    prior: Section = None  # StageConfig of the prior
    evaluation: Section = None  # EvalConfig
