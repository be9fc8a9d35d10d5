"""Config, ``nn.Module`` and ``KexueModule`` of the MLP used by the ``tricks`` pipeline.

Su's ``mnist_mlp_example.py`` (``bojone/accum_optimizer_for_keras``): Dense(512, relu) -
Dropout(0.2) - Dense(512, relu) - Dropout(0.2) - Dense(10, softmax) on 784 pixels scaled to [0, 1],
categorical cross-entropy, ``Adam()`` (lr 1e-3). Here the softmax lives in the loss
(``F.cross_entropy`` on logits); the init is PyTorch's default, not Keras' Glorot uniform.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kexue.config import build_config
from kexue.training.config import OptimizerConfig
from kexue.training.module import KexueModule


@dataclass
class MLPConfig:
    """Architecture of :class:`MLP`.

    Args:
        in_dim: Input features (784 for 28x28 MNIST, 64 for 8x8 digits; filled from the data).
        hidden: Width of each hidden ReLU layer, in order (Su: ``[512, 512]``).
        n_classes: Output classes.
        dropout: Dropout after every hidden layer (Su: 0.2; 0 disables).
    """

    in_dim: int = 784
    hidden: list[int] = field(default_factory=lambda: [512, 512])
    n_classes: int = 10
    dropout: float = 0.2

    def validate(self) -> None:
        if self.in_dim < 1 or self.n_classes < 2:
            raise ValueError("in_dim must be >= 1 and n_classes >= 2")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden={self.hidden}: every layer width must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout}: use a value in [0, 1)")


class MLP(nn.Module):
    """``in_dim -> [Linear, ReLU, Dropout] * len(hidden) -> Linear(n_classes)`` (logits)."""

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = cfg.in_dim
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            width = h
        layers.append(nn.Linear(width, cfg.n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)                          # (B, in_dim) -> (B, n_classes)


class MLPClassifier(KexueModule):
    """Cross-entropy classifier around :class:`MLP`; ``batch = (x, y)``.

    Args:
        cfg: Architecture.
        optim: Optimizer / scheduler config (name table in ``kexue.training.optim``).
    """

    def __init__(self, cfg: MLPConfig, optim: OptimizerConfig | None = None) -> None:
        super().__init__(optim)
        self.cfg = cfg
        self.model = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)                        # (B, n_classes) logits

    def compute_loss(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, y = batch                                # (B, in_dim), (B,)
        logits = self.model(x)                      # (B, n_classes)
        loss = F.cross_entropy(logits, y)           # mean over the batch
        # per-sample hits (B,) bool: KexueModule averages them once per logging window
        return loss, {"acc": logits.argmax(dim=-1) == y}

    def bundle(self, **extra: Any) -> dict[str, Any]:
        """A weights-only bundle for ``kexue.io.TorchDataset``: config, state_dict and ``extra``."""
        return {"config": asdict(self.cfg), "optimizer": asdict(self.optim_cfg),
                "state_dict": self.model.state_dict(), **extra}


def bundle_to_classifier(bundle: dict[str, Any]) -> MLPClassifier:
    """Rebuild an :class:`MLPClassifier` (eval mode, CPU) from :meth:`MLPClassifier.bundle`."""
    cfg = build_config(MLPConfig, bundle["config"], where="bundle.config")
    optim = build_config(OptimizerConfig, bundle.get("optimizer"), where="bundle.optimizer")
    module = MLPClassifier(cfg, optim)
    module.model.load_state_dict(bundle["state_dict"])
    return module.eval()
