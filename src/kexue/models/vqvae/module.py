"""LightningModules of the VQ-VAE family: the autoencoder and the code prior (fitted afterwards,
on the frozen VQ-VAE's codes, as in the paper).

``compute_loss`` is pure: a training-mode forward only keeps the quantiser's statistics, and
:class:`VQVAEModule` applies the EMA codebook / dead-code update once per optimizer step
(:meth:`~kexue.models.vqvae.quantizer.VectorQuantizer.apply_pending`), so gradient accumulation
stays exact for the codebook too.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from kexue.models.vqvae.config import PriorConfig, VQVAEConfig
from kexue.models.vqvae.model import VQVAE
from kexue.models.vqvae.prior import build_prior
from kexue.models.vqvae.quantizer import perplexity_of
from kexue.training.config import OptimizerConfig
from kexue.training.module import KexueModule


def _first_tensor(batch: Any, key: str) -> Tensor:
    """``batch[key]`` for a dict, ``batch[0]`` for a tuple / list, or the tensor itself."""
    if isinstance(batch, dict):
        return batch[key]
    if isinstance(batch, (tuple, list)):
        return batch[0]
    return batch


class VQVAEModule(KexueModule):
    """Trains :class:`VQVAE` with Su's mean-reduced loss (paper weights)::

        loss = mean((x_hat - x)^2) + mean((sg[z] - z_q)^2) + beta * mean((z - sg[z_q])^2)

    (the middle term is 0 with the EMA codebook). Batches are ``{"x": (B, C, S, S)}`` or
    ``(x, y)`` with pixels scaled to ``[-0.5, 0.5]``.

    Per-step metrics: ``recon_mse``, ``perplexity`` (of the batch), ``commitment``, ``codebook``.
    Per epoch: ``train/codes_used_frac`` (fraction of the K codes assigned at least once in the
    epoch) and ``train/epoch_code_perplexity`` (perplexity of the epoch's histogram), which unlike the
    batch perplexity does not depend on the batch size.

    Args:
        model_cfg: Architecture and quantiser.
        optim: Optimizer settings (Su: Adam 1e-3).
    """

    def __init__(self, model_cfg: VQVAEConfig, optim: OptimizerConfig | None = None) -> None:
        super().__init__(optim)
        self.model_cfg = model_cfg
        self.model = VQVAE(model_cfg)
        self.register_buffer("epoch_counts", torch.zeros(model_cfg.codebook_size),
                             persistent=False)  # (K,)

    def compute_loss(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x = _first_tensor(batch, "x")                       # (B, C, S, S)
        out = self.model(x)
        q = out.quant
        recon = F.mse_loss(out.x_hat.float(), x.float())
        loss = recon + q.codebook_loss + self.model_cfg.beta * q.commitment_loss
        metrics = {"recon_mse": recon.detach(), "perplexity": q.perplexity.detach(),
                   "commitment": q.commitment_loss.detach(), "codebook": q.codebook_loss.detach()}
        return loss, metrics

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.model.quantizer.new_micro_batch()

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        """The codebook update of the accumulation window, once per optimizer step (whatever
        number of times a trick computed the loss: :meth:`VectorQuantizer.apply_pending`)."""
        if self.model.quantizer.apply_pending():
            self.epoch_counts += self.model.quantizer.last_counts

    def on_train_epoch_start(self) -> None:
        self.epoch_counts.zero_()

    def epoch_usage(self) -> tuple[Tensor, Tensor]:
        """``(codes_used_frac, perplexity_epoch)`` of the epoch so far (summed over ranks)."""
        counts = self.epoch_counts
        if self._trainer is not None and self.trainer.world_size > 1:
            counts = self.all_gather(counts).reshape(-1, counts.numel()).sum(0)
        used = (counts > 0).float().mean()
        return used, perplexity_of(counts)

    def epoch_end_metrics(self) -> dict[str, float]:
        """Epoch-level metrics for :class:`kexue.training.history.EpochMetrics` (which runs
        before this module's ``on_train_epoch_end`` and so cannot see what that hook logs)."""
        used, ppl = self.epoch_usage()
        return {"train/codes_used_frac": float(used), "train/epoch_code_perplexity": float(ppl)}

    def on_train_epoch_end(self) -> None:
        for name, value in self.epoch_end_metrics().items():
            self.log(name, value, on_step=False, on_epoch=True)


class PriorModule(KexueModule):
    """Fits an autoregressive prior (:func:`build_prior`) on code grids ``{"codes": (B, H, W)}``
    (or ``(codes, ...)``) by the mean cross-entropy in nats per code; also logs ``accuracy``.

    Args:
        prior_cfg: Which prior and its size.
        codebook_size: K of the VQ-VAE whose codes are modelled.
        height: Code grid height.
        width: Code grid width.
        optim: Optimizer settings.
    """

    def __init__(self, prior_cfg: PriorConfig, codebook_size: int, height: int, width: int,
                 optim: OptimizerConfig | None = None) -> None:
        super().__init__(optim)
        self.prior_cfg = prior_cfg
        self.codebook_size = codebook_size
        self.prior = build_prior(prior_cfg, codebook_size, height, width)

    def compute_loss(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        codes = _first_tensor(batch, "codes").long()  # (B, H, W)
        logits = self.prior(codes)                     # (B, K, H, W)
        ce = F.cross_entropy(logits.float(), codes)
        acc = (logits.argmax(dim=1) == codes).float().mean()
        return ce, {"nll": ce.detach(), "accuracy": acc}
