"""``params:entity_linking``'s top level: pruning, the joint model, decoding, checked before the first node
(:class:`kexue.config.Section`)."""

from __future__ import annotations

from dataclasses import dataclass

from kexue.config import Section


@dataclass
class Parameters:
    """Keys of ``conf/*/parameters_entity_linking.yml``; sections are checked where read."""

    pruning: Section = None  # PruningConfig
    model: Section = None  # ModelConfig
    data: Section = None  # DataConfig
    decode: Section = None  # DecodeConfig
    trainer: Section = None  # TrainerConfig
    optimizer: Section = None  # OptimizerConfig
    adversarial: Section = None  # AdversarialConfig
    ema: Section = None  # EMAConfig
