"""Top-level keys of ``params:entity_linking`` (``conf/*/parameters_entity_linking.yml``).

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
    """``params:entity_linking``: pruning, the joint model, decoding."""

    pruning: Section = None  # PruningConfig
    model: Section = None  # ModelConfig
    data: Section = None  # DataConfig
    decode: Section = None  # DecodeConfig
    trainer: Section = None  # TrainerConfig
    optimizer: Section = None  # OptimizerConfig
    adversarial: Section = None  # AdversarialConfig
    ema: Section = None  # EMAConfig
