"""LightningModule of the classifier, its evaluation, and the embedding-space robustness probe."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kexue.models.textcls.model import CharClassifier, ClassifierConfig
from kexue.training.config import OptimizerConfig
from kexue.training.module import KexueModule


class ClassifierModule(KexueModule):
    """Sample-mean cross-entropy of ``{"x": (B, L) ids, "y": (B,)}``; metric ``acc``."""

    def __init__(self, cfg: ClassifierConfig, optim: OptimizerConfig | None = None) -> None:
        super().__init__(optim)
        self.model = CharClassifier(cfg)

    def compute_loss(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self.model(batch["x"])                                  # (B, C)
        loss = F.cross_entropy(logits, batch["y"])
        return loss, {"acc": (logits.argmax(-1) == batch["y"]).float().mean()}


def _macro_f1(pred: np.ndarray, gold: np.ndarray, n_classes: int) -> float:
    f1s = []
    for c in range(n_classes):
        tp = int(((pred == c) & (gold == c)).sum())
        fp, fn = int(((pred == c) & (gold != c)).sum()), int(((pred != c) & (gold == c)).sum())
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


@torch.no_grad()
def evaluate(model: CharClassifier, x: Tensor, y: Tensor, batch_size: int = 256
             ) -> dict[str, Any]:
    """Accuracy and macro-F1 (over the classes present in gold or predictions) of ``model``."""
    model.eval()
    pred = torch.cat([model(x[i:i + batch_size]).argmax(-1) for i in range(0, len(x), batch_size)])
    p, g = pred.numpy(), y.numpy()
    return {"acc": float((p == g).mean()), "macro_f1": _macro_f1(p, g, model.cfg.n_classes),
            "pred": p}


def perturbed_accuracy(model: CharClassifier, x: Tensor, y: Tensor, epsilon: float,
                       batch_size: int = 256) -> tuple[float, float]:
    """Accuracy under the worst-case first-order perturbation of each example's embedded chars:
    ``delta = epsilon * g / ||g||_F`` with ``g = dCE/d(embedding output)`` of that example (the
    same direction FGM trains against, per example instead of per batch), added to the embedding
    output. Returns ``(accuracy, mean ||delta||_F)`` -- the norm check of the probe."""
    model.eval()
    correct, norms = 0, []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        mask = (xb != 0).unsqueeze(-1)                                   # (B, L, 1)
        delta = torch.zeros(*xb.shape, model.cfg.emb_dim, requires_grad=True)
        loss = F.cross_entropy(model(xb, delta), yb, reduction="sum")
        (g,) = torch.autograd.grad(loss, delta)
        g = g * mask                                                     # padding stays put
        norm = g.flatten(1).norm(dim=1).clamp_min(1e-12)                 # (B,)
        adv = epsilon * g / norm[:, None, None]
        norms.append(adv.flatten(1).norm(dim=1))
        with torch.no_grad():
            correct += int((model(xb, adv).argmax(-1) == yb).sum())
    return correct / max(1, len(x)), float(torch.cat(norms).mean()) if norms else 0.0
