"""Top-level keys of ``params:title_generation`` (``conf/*/parameters_title_generation.yml``).

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
    """``params:title_generation``: the seq2seq models, their decoders and the lead-N baseline."""

    device: str = "auto"  # decoding device: auto | cpu | cuda
    cpu_threads: int = 0  # torch intra-op threads inside these nodes (0 = torch's default)
    data: Section = None  # DataConfig
    model: Section = None  # Seq2SeqConfig
    trainer: Section = None  # TrainerConfig
    optimizer: Section = None  # OptimizerConfig
    adversarial: Section = None  # AdversarialConfig
    ema: Section = None  # EMAConfig
    second_pass: Section = None  # SecondPassConfig
    decode: Section = None  # DecodeConfig
    lead: Section = None  # LeadConfig
