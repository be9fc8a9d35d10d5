"""Models shared by the benchmark scripts (imported as ``from _models import ...``)."""

from __future__ import annotations

from torch import nn

from kexue.training.config import OptimizerConfig
from kexue.training.module import KexueModule


class TokenEncoder(KexueModule):
    """Embedding -> TransformerEncoder -> mean-pool -> Linear(10): a BN-free, FGM-ready model.

    Args:
        s: Sizes ``{"vocab", "d", "heads", "d_ff", "layers"}``.
    """

    def __init__(self, s: dict) -> None:
        super().__init__(OptimizerConfig(name="adamw", lr=1e-3))
        self.embedding = nn.Embedding(s["vocab"], s["d"])
        layer = nn.TransformerEncoderLayer(s["d"], s["heads"], s["d_ff"], dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, s["layers"], enable_nested_tensor=False)
        self.head = nn.Linear(s["d"], 10)

    def compute_loss(self, batch):
        x, y = batch
        h = self.encoder(self.embedding(x))                          # (B, L, D)
        return nn.functional.cross_entropy(self.head(h.mean(1)), y), {}
