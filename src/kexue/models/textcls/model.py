"""Character classifier: ``embedding -> encoder (masked BiLSTM | CNN) -> masked max+mean pool ->
linear``. The embedding is ``CharClassifier.embedding`` (FGM / GP perturb it by that name)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from kexue.nn import AlignedBiLSTM, masked_max, masked_mean


@dataclass
class ClassifierConfig:
    """Architecture of :class:`CharClassifier` (``vocab_size`` / ``n_classes`` from the data)."""

    vocab_size: int = 0
    n_classes: int = 2
    emb_dim: int = 64
    hidden: int = 64
    encoder: str = "bilstm"          # bilstm | cnn
    kernel: int = 3
    dropout: float = 0.1
    max_len: int = 64

    def validate(self) -> None:
        if self.encoder not in ("bilstm", "cnn"):
            raise ValueError(f"encoder={self.encoder!r}: use bilstm or cnn")
        if self.vocab_size < 0 or self.n_classes < 2 or self.emb_dim < 1 or self.hidden < 1:
            raise ValueError("vocab_size >= 0, n_classes >= 2, emb_dim and hidden >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout}: use a value in [0, 1)")


class CharClassifier(nn.Module):
    """Logits ``(B, n_classes)`` for padded char ids ``(B, L)`` (0 = padding)."""

    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.emb_dim, padding_idx=0)
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.encoder == "bilstm":
            self.rnn = AlignedBiLSTM(cfg.emb_dim, cfg.hidden // 2 or 1)
            width = self.rnn.output_size
        else:
            self.conv = nn.Conv1d(cfg.emb_dim, cfg.hidden, cfg.kernel, padding=cfg.kernel // 2)
            width = cfg.hidden
        self.out = nn.Linear(2 * width, cfg.n_classes)

    def encode(self, emb: Tensor, mask: Tensor) -> Tensor:
        """Pooled features ``(B, 2W)`` of embedded chars ``emb`` (B, L, E) under ``mask``."""
        h = self.dropout(emb)
        if self.cfg.encoder == "bilstm":
            h = self.rnn(h, mask)                                        # (B, L, W)
        else:
            h = torch.relu(self.conv(h.transpose(1, 2))).transpose(1, 2)  # (B, L, W)
        return torch.cat([masked_max(h, mask, dim=1), masked_mean(h, mask, dim=1)], dim=-1)

    def forward(self, x: Tensor, emb_delta: Tensor | None = None) -> Tensor:
        """``emb_delta`` (B, L, E), added to the embedding output, is the robustness probe."""
        mask = x != 0                                                    # (B, L)
        emb = self.embedding(x)                                          # (B, L, E)
        if emb_delta is not None:
            emb = emb + emb_delta
        return self.out(self.dropout(self.encode(emb, mask)))            # (B, C)
