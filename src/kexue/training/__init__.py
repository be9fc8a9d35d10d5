"""Training toolkit: AdaFactor, exact gradient accumulation, FGM / gradient penalty, EMA,
optimizer and scheduler factories, and the Trainer builder. Any LightningModule opts in by config.

Public API (``from kexue.training import AdaFactor, FGM, ...``)::

    AdaFactor                       optimizer (Su / mesh-tf factored second moments)
    ExactAccumulation               k micro-batches == one big batch (callback)
    AccumulationGuard, AccumulationWindows
    FGM, GradientPenalty            adversarial training on the token embedding (callbacks)
    EMA                             exponential moving average of weights (callback)
    KexueModule, LossTerms          pure loss_terms / compute_loss, normaliser groups
    build_trainer, build_callbacks, build_optimizer, build_scheduler, torch_threads
    TrainerConfig, OptimizerConfig, AdversarialConfig, EMAConfig
"""

from kexue.training.accumulation import AccumulationGuard, AccumulationWindows, ExactAccumulation
from kexue.training.adafactor import AdaFactor
from kexue.training.adversarial import FGM
from kexue.training.config import AdversarialConfig, EMAConfig, OptimizerConfig, TrainerConfig
from kexue.training.ema import EMA
from kexue.training.gradient_penalty import GradientPenalty
from kexue.training.loss import LossTerms
from kexue.training.module import KexueModule
from kexue.training.optim import build_optimizer, build_scheduler
from kexue.training.threads import torch_threads
from kexue.training.trainer import build_callbacks, build_trainer

__all__ = [
    "EMA",
    "FGM",
    "AccumulationGuard",
    "AccumulationWindows",
    "AdaFactor",
    "AdversarialConfig",
    "EMAConfig",
    "ExactAccumulation",
    "GradientPenalty",
    "KexueModule",
    "LossTerms",
    "OptimizerConfig",
    "TrainerConfig",
    "build_callbacks",
    "build_optimizer",
    "build_scheduler",
    "build_trainer",
    "torch_threads",
]
