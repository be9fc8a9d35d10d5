"""Top-level keys of ``params:nvae`` (``conf/*/parameters_nvae.yml``).

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
    """``params:nvae``: the NVAE and baseline VAE runs."""

    cpu_threads: int = 0  # torch intra-op threads inside these nodes (0 = torch's default)
    batch_size: int = 64  # training batch size of both models
    model: Section = None  # NVAEConfig
    baseline: Section = None  # VAEConfig
    trainer: Section = None  # TrainerConfig
    optimizer: Section = None  # OptimizerConfig
    evaluation: Section = None  # EvalConfig
