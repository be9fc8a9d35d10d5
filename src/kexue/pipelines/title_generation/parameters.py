"""``params:title_generation``'s top level: the seq2seq models, their decoders and the lead-N baseline, checked before the first node
(:class:`kexue.config.Section`)."""

from __future__ import annotations

from dataclasses import dataclass

from kexue.config import Section


@dataclass
class Parameters:
    """Keys of ``conf/*/parameters_title_generation.yml``; sections are checked where read."""

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
