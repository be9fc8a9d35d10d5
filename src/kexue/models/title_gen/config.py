"""Config dataclasses for the title-generation seq2seq models (post 6877).

Built from ``params:title_generation.*`` with :func:`kexue.config.build_config`. Defaults are the
reduced CPU sizes; ``conf/gpu/parameters_title_generation.yml`` sets Su's full sizes
(char/z dim 128, maxlen 400, batch 64).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kexue.config import require_at_least, require_dropout


@dataclass
class Seq2SeqConfig:
    """Architecture of :class:`kexue.models.title_gen.model.Seq2Seq`.

    Args:
        vocab_size: Number of token ids (filled in from the vocabulary; 0 = not yet known).
        emb_dim: Shared char embedding size (Su: 128).
        enc_hidden: Hidden units per direction of each encoder BiLSTM (Su: 64, output 128).
        dec_hidden: Hidden units of the decoder LSTMs (Su: 128).
        heads: Attention heads (Su: 8) for the source and the cross-direction attention.
        head_dim: Size per head (Su: 16).
        smln_hidden: Hidden units of the SelfModulatedLayerNorm MLPs (Su: 32).
        out_dim: Size of the Dense + LeakyReLU(0.2) before the shared classifier (Su: 128).
        cross_attention: True = the bidirectional model (each decoder attends to the other
            direction's states with mask_right); False = no cross attention (each decoder can
            be decoded alone): the unidirectional baselines, one model per direction trained
            on that direction's CE only (``TitleGenModule(directions="l2r" | "r2l")``).
        copy_prior: Average the logits with Su's ScaleShift(bag of source chars) copy prior.
        dropout: Dropout on the embeddings and decoder features (Su: none).
    """

    vocab_size: int = 0
    emb_dim: int = 64
    enc_hidden: int = 32
    dec_hidden: int = 64
    heads: int = 4
    head_dim: int = 16
    smln_hidden: int = 32
    out_dim: int = 64
    cross_attention: bool = True
    copy_prior: bool = True
    dropout: float = 0.0

    def validate(self) -> None:
        if self.vocab_size < 0:
            raise ValueError("vocab_size must be >= 0 (0 = filled in from the vocabulary)")
        require_at_least(self, 1, "emb_dim", "enc_hidden", "dec_hidden", "heads", "head_dim",
                         "smln_hidden", "out_dim")
        require_dropout(self)


@dataclass
class DataConfig:
    """How ``title_pairs`` become id tensors.

    Args:
        max_source_len: Source chars kept (Su: 400); longer contents are truncated.
        max_target_len: Title chars kept, *excluding* the start/end ids.
        batch_size: Training batch size (Su: 64).
        max_train_examples: Cap on training pairs (0 = all), for quick runs.
        max_eval_examples: Cap on test pairs that are decoded (0 = all); decoding is the slow part.
    """

    max_source_len: int = 128
    max_target_len: int = 32
    batch_size: int = 32
    max_train_examples: int = 0
    max_eval_examples: int = 0

    def validate(self) -> None:
        require_at_least(self, 1, "max_source_len", "max_target_len", "batch_size")
        require_at_least(self, 0, "max_train_examples", "max_eval_examples")  # 0 = all


@dataclass
class SecondPassConfig:
    """Optional second training pass against gold-token leakage (paper's two-pass remedy).

    The first-pass bidirectional model decodes every training source (jointly, both
    directions, ``decode`` = greedy); the second pass then fine-tunes a copy of it where each
    direction reads the GENERATED tokens of the other direction while predicting gold.

    Args:
        enabled: Run the second pass (and evaluate the resulting model too).
        max_epochs: Fine-tuning epochs.
        lr: Learning rate of the fine-tuning (same optimizer name as the first pass).
        mix_gold: Probability per batch of still feeding gold context (0 = always generated).
    """

    enabled: bool = False
    max_epochs: int = 1
    lr: float = 5e-4
    mix_gold: float = 0.0

    def validate(self) -> None:
        if self.max_epochs < 1:
            raise ValueError("second_pass.max_epochs must be >= 1")
        if not 0.0 <= self.mix_gold <= 1.0:
            raise ValueError("second_pass.mix_gold must lie in [0, 1]")


@dataclass
class DecodeConfig:
    """Decoding settings for evaluation.

    Args:
        beam_size: k for the L2R / R2L / bidirectional beam searches (Su: 3).
        max_len: Maximum generated tokens (Su: 64); counts the end token.
        batch_size: Source texts decoded in parallel.
        n_samples: Generated titles written beside the references in the samples table.
        methods: Which decoders to evaluate (any of l2r_greedy, l2r_beam, r2l_beam, bidi_beam).
        cache: Incremental decoding (cached LSTM states and attention keys, per-token cost flat
            in the title length). ``false`` = the full-prefix reference (re-runs the prefix
            every step, quadratic); both give the same titles and scores.
    """

    beam_size: int = 3
    max_len: int = 34
    batch_size: int = 16
    n_samples: int = 20
    methods: list[str] = field(
        default_factory=lambda: ["l2r_greedy", "l2r_beam", "r2l_beam", "bidi_beam"])
    cache: bool = True

    def validate(self) -> None:
        allowed = {"l2r_greedy", "l2r_beam", "r2l_beam", "bidi_beam"}
        bad = [m for m in self.methods if m not in allowed]
        if bad:
            raise ValueError(f"decode.methods has unknown {bad}; use any of {sorted(allowed)}")
        require_at_least(self, 1, "beam_size", "max_len", "batch_size")


@dataclass
class LeadConfig:
    """Lead-N baseline (first N characters of the text; N tuned on dev by ROUGE-L).

    Args:
        enabled: Compute it (and show it beside the models in the report).
        max_n: Largest N tried (1..max_n).
    """

    enabled: bool = True
    max_n: int = 40

    def validate(self) -> None:
        require_at_least(self, 1, "max_n")


DecodeMethod = Literal["l2r_greedy", "l2r_beam", "r2l_beam", "bidi_beam"]
