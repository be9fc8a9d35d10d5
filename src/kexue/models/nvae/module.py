"""LightningModules for NVAE and the single-latent ConvVAE baseline.

Loss (nats per image, averaged over the batch; NVAE's ``loss``)::

    loss = mean_b[ -log p(x_b | z_b) + beta(step) * sum_g c_g KL_gb ]
           + lambda * (spectral_loss + bn_loss)                       # NVAE only

``beta`` is :func:`kl_coefficient` at ``self.global_step`` (the optimizer-step counter Lightning
keeps, so accumulation does not speed up the warm-up) over ``total_steps`` (the constructor's, else
``trainer.estimated_stepping_batches``; outside a Trainer without ``total_steps`` the warm-up is
off, ``beta = 1``). ``c_g`` are the KL balancing weights while ``beta < 1`` (all 1 otherwise).
With the Bernoulli likelihood, training batches are binarised dynamically, ``torch.bernoulli(x)``
from the global RNG; evaluation batches are used as given.

``compute_loss`` logs nothing; it does advance the power-iteration state of the spectral
regulariser (like BatchNorm's running statistics, a side effect of the technique).

Metrics (nats per image): ``recon`` (``-log p(x|z)``), ``kl`` (unweighted sum over groups),
``elbo`` (``-(recon + kl)``, a lower bound on ``log p(x)``), ``beta``; NVAE adds ``spectral``
and ``bn``.

Optimizer: :func:`nvae_optimizer` -- Adamax (lr 1e-2, eps 1e-3, weight decay 3e-4) with the
project's ``cosine_warmup`` schedule (linear warm-up over ``warmup_steps``, then a half cosine to
0 at the last step; NVAE decays to 1e-4 instead -- negligible at the end of training).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from kexue.models.nvae.baseline import ConvVAE
from kexue.models.nvae.config import NVAEConfig, VAEConfig
from kexue.models.nvae.model import NVAE
from kexue.models.nvae.schedule import balanced_kl, kl_balance_alpha, kl_coefficient
from kexue.models.nvae.spectral import _STATE_ATTR, _state_of, bn_loss, spectral_loss
from kexue.training.config import OptimizerConfig
from kexue.training.module import KexueModule


def nvae_optimizer(warmup_steps: int = 0, lr: float = 1e-2) -> OptimizerConfig:
    """NVAE's optimizer: Adamax(lr, eps=1e-3, weight_decay=3e-4), linear warm-up + cosine decay
    (NVAE: 5 epochs of warm-up -- pass ``5 * steps_per_epoch``)."""
    return OptimizerConfig(name="adamax", lr=lr, weight_decay=3e-4, kwargs={"eps": 1e-3},
                           scheduler="cosine_warmup", warmup_steps=warmup_steps)


def _images(batch: Any) -> Tensor:
    """``batch["x"]`` for a dict, ``batch[0]`` for a tuple / list, or the tensor itself."""
    if isinstance(batch, dict):
        return batch["x"]
    if isinstance(batch, (tuple, list)):
        return batch[0]
    return batch


class _VAEModuleBase(KexueModule):
    """Shared ELBO loss; subclasses set ``model``, ``likelihood``, ``kl_warmup_frac``."""

    model: nn.Module
    likelihood: str
    kl_warmup_frac: float
    alpha: Tensor | None = None

    def __init__(self, optim: OptimizerConfig | None, total_steps: int | None) -> None:
        super().__init__(optim or nvae_optimizer())
        self.total_steps = total_steps

    def _total_steps(self) -> int | None:
        if self.total_steps is not None:
            return int(self.total_steps)
        if self._trainer is not None:
            total = self.trainer.estimated_stepping_batches
            return int(total) if total != float("inf") else None
        return None

    def kl_beta(self) -> float:
        """KL weight at ``self.global_step`` (1 when the total number of steps is unknown)."""
        total = self._total_steps()
        if total is None:
            return 1.0
        return kl_coefficient(int(self.global_step), total, self.kl_warmup_frac)

    def regulariser(self) -> tuple[Tensor | None, dict[str, Tensor]]:
        """Extra loss term added once per batch (none for the baseline)."""
        return None, {}

    def compute_loss(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x = _images(batch).float()                                      # (B, C, H, W) in [0, 1]
        if self.likelihood == "bernoulli" and self.training:
            x = torch.bernoulli(x)
        out = self.model(x)
        recon = -self.model.log_likelihood(out.params, x)               # (B,)
        kl = torch.stack(out.kl_per_group).sum(0)                       # (B,)
        beta = self.kl_beta()
        alpha = self.alpha if self.alpha is not None and len(out.kl_per_group) > 1 else None
        kl_term = balanced_kl(out.kl_per_group, beta, alpha)            # (B,)
        loss = (recon + beta * kl_term).mean()
        metrics = {"recon": recon.mean().detach(), "kl": kl.mean().detach(),
                   "elbo": -(recon + kl).mean().detach(),
                   "beta": torch.tensor(beta, device=x.device)}
        reg, reg_metrics = self.regulariser()
        if reg is not None:
            loss = loss + reg
        metrics.update(reg_metrics)
        return loss, metrics


class NVAEModule(_VAEModuleBase):
    """Trains :class:`NVAE` (see the module docstring for the loss).

    Args:
        model_cfg: Architecture and regularisers.
        optim: Optimizer settings (default :func:`nvae_optimizer`).
        total_steps: Optimizer steps of the run for the KL warm-up (default: the Trainer's).
    """

    def __init__(self, model_cfg: NVAEConfig, optim: OptimizerConfig | None = None,
                 total_steps: int | None = None) -> None:
        super().__init__(optim, total_steps)
        self.model_cfg = model_cfg
        self.model = NVAE(model_cfg)
        self.likelihood = model_cfg.likelihood
        self.kl_warmup_frac = model_cfg.kl_warmup_frac
        if model_cfg.kl_balance:
            self.alpha = kl_balance_alpha([model_cfg.groups_per_scale] * model_cfg.scales)

    def get_extra_state(self) -> dict[str, Any]:
        """The power-iteration vectors travel with checkpoints, so a resumed fit continues them
        (bit-identical to an uninterrupted one) instead of re-initialising them."""
        pi = self.model.__dict__.get(_STATE_ATTR)
        return {k: (u.detach().clone(), v.detach().clone())
                for k, (u, v) in (pi.state.items() if pi else [])}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        _state_of(self.model).state = {k: (u, v) for k, (u, v) in (state or {}).items()}

    def regulariser(self) -> tuple[Tensor | None, dict[str, Tensor]]:
        lam = self.model_cfg.spectral_lambda
        if lam <= 0:
            return None, {}
        # evaluation reads the power iteration; training advances it once per weight update
        sr = spectral_loss(self.model, self.model_cfg.power_iters, self.model_cfg.power_iters_init,
                           update=self.training)
        bn = bn_loss(self.model)
        return lam * (sr + bn), {"spectral": sr.detach(), "bn": bn.detach()}


class VAEModule(_VAEModuleBase):
    """Trains the :class:`ConvVAE` baseline with the same loss (one group: no balancing, no
    spectral term).

    Args:
        model_cfg: Baseline architecture.
        optim: Optimizer settings (default :func:`nvae_optimizer`).
        total_steps: Optimizer steps of the run for the KL warm-up (default: the Trainer's).
    """

    def __init__(self, model_cfg: VAEConfig, optim: OptimizerConfig | None = None,
                 total_steps: int | None = None) -> None:
        super().__init__(optim, total_steps)
        self.model_cfg = model_cfg
        self.model = ConvVAE(model_cfg)
        self.likelihood = model_cfg.likelihood
        self.kl_warmup_frac = model_cfg.kl_warmup_frac
