"""LightningModule of the joint model: pure ``compute_loss = s1 + s2 + link BCE``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from kexue.models.entity_linking.config import ModelConfig
from kexue.models.entity_linking.model import JointLinker
from kexue.training.config import OptimizerConfig
from kexue.training.loss import LossTerms
from kexue.training.module import KexueModule

EMBEDDING_PATH = "net.embed.embedding"  # value for ``adversarial.embedding``
_EPS = 1e-7  # Keras' probability clipping in binary_crossentropy


def masked_bce(prob: Tensor, target: Tensor, mask: Tensor, reduction: str = "mean") -> Tensor:
    """BCE of probabilities (clipped to ``[eps, 1-eps]`` like Keras), mean (or sum) over valid
    positions.

    ``prob`` is ``sigmoid(.) * pres``: outside max-match spans it is 0, so a gold start there
    adds a constant ``-log(eps)`` without gradient (as in ``el.py``).
    """
    loss = F.binary_cross_entropy(prob.clamp(_EPS, 1 - _EPS), target, reduction="none")
    m = mask.to(loss.dtype)
    if reduction == "sum":
        return (loss * m).sum()
    return (loss * m).sum() / m.sum().clamp(min=1.0)


class EntityLinkingModule(KexueModule):
    """Joint NER + binary matcher (``el.py``'s ``train_model``).

    Loss of a batch, as in ``el.py``: ``s1 + s2 + link`` where ``s1``/``s2`` (start/end BCE) are
    means over every valid CHARACTER of the batch and ``link`` (matching BCE) is a mean over its
    (mention, candidate) PAIRS (one per row). The big-batch definition under accumulation is the
    same formula on the concatenated batch: char sums / the window's chars + pair sums / the
    window's pairs (groups ``chars`` and ``pairs``), which ExactAccumulation reproduces exactly.

    Args:
        vocab_size: Char vocabulary size (pad + unk + chars).
        cfg: Model config.
        optim: Optimizer config.
        word_vectors: Optional fixed ``(V, d)`` word-vector table (row 0 = unknown).
    """

    def __init__(self, vocab_size: int, cfg: ModelConfig, optim: OptimizerConfig | None = None,
                 word_vectors: Tensor | None = None) -> None:
        super().__init__(optim)
        self.net = JointLinker(vocab_size, cfg, word_vectors)

    def loss_terms(self, batch: dict[str, Tensor]) -> LossTerms:
        """Pure loss: start + end BCE (char sums) + matcher BCE (pair sum). No logging."""
        chars = batch["chars"]
        mask = chars > 0
        h, p1, p2 = self.net.encode(chars, batch["pres1"], batch["pres2"], batch.get("words"))
        s1 = masked_bce(p1, batch["s1"], mask, "sum")
        s2 = masked_bce(p2, batch["s2"], mask, "sum")
        logit = self.net.match_logit(h, mask, batch["span_feats"], batch["desc"],
                                     batch.get("desc_words"))
        link = F.binary_cross_entropy_with_logits(logit, batch["label"], reduction="sum")
        acc = ((logit > 0).float() == batch["label"]).float().mean()
        terms = LossTerms({"s1": s1, "s2": s2, "link": link},
                          {"s1": "chars", "s2": "chars", "link": "pairs"},
                          self.loss_counts(batch))
        means = terms.term_means()
        terms.metrics = {"s1_loss": means["s1"], "s2_loss": means["s2"],
                         "link_loss": means["link"], "link_acc": acc.detach()}
        return terms

    def loss_counts(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"chars": (batch["chars"] > 0).sum(), "pairs": torch.tensor(
            float(batch["label"].shape[0]))}

    @torch.no_grad()
    def ner_probs(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(B, L)`` start / end probabilities."""
        _, p1, p2 = self.net.encode(batch["chars"], batch["pres1"], batch["pres2"], batch.get("words"))
        return p1, p2

    @torch.no_grad()
    def link_probs(self, batch: dict[str, Tensor]) -> Tensor:
        """``(B,)`` probability that each pair's candidate is the gold entity."""
        chars = batch["chars"]
        h, _, _ = self.net.encode(chars, batch["pres1"], batch["pres2"], batch.get("words"))
        return torch.sigmoid(self.net.match_logit(h, chars > 0, batch["span_feats"], batch["desc"],
                                                  batch.get("desc_words")))


def module_from_bundle(bundle: dict[str, Any]) -> EntityLinkingModule:
    """Rebuild the module (eval mode, EMA weights) from a saved bundle."""
    cfg = ModelConfig(**bundle["model_config"])
    state = bundle["state_dict"]
    vectors = state.get("net.embed.word_embedding.weight")
    module = EntityLinkingModule(int(bundle["vocab_size"]), cfg, word_vectors=vectors)
    module.load_state_dict(state)
    return module.eval()
