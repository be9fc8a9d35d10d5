"""Models shared by the benchmark scripts (imported as ``from _models import ...``)."""

from __future__ import annotations

import torch
from torch import nn

from kexue.models.title_gen.config import Seq2SeqConfig
from kexue.models.title_gen.model import Seq2Seq
from kexue.training.config import OptimizerConfig
from kexue.training.module import KexueModule


def make_seq2seq(cross: bool, vocab: int, device: torch.device) -> Seq2Seq:
    """Random-init title ``Seq2Seq`` of the CPU default sizes (``cross``: the bidirectional
    model's cross-direction attention, else the baseline) in eval mode on ``device``, that never
    emits an end id: every search runs a fixed number of steps."""
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(vocab_size=vocab, cross_attention=cross)).to(device).eval()
    with torch.no_grad():
        model.classifier.bias[[2, 3]] = -30.0
    return model


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
