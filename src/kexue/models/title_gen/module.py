"""LightningModule for the title generators: a pure ``compute_loss`` (CE of the trained
direction(s): L2R alone, R2L alone, or the mean of both)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from kexue.models.title_gen.config import Seq2SeqConfig
from kexue.models.title_gen.model import PAD, Seq2Seq
from kexue.nn import masked_cross_entropy
from kexue.training.config import OptimizerConfig
from kexue.training.loss import LossTerms
from kexue.training.module import KexueModule


def direction_losses(model: Seq2Seq, batch: dict[str, Tensor],
                     reduction: str = "mean") -> tuple[Tensor, Tensor]:
    """Teacher-forced masked CE of the L2R and R2L directions for one batch (mean or sum).

    Uses ``batch["yl_ctx"]`` / ``batch["yr_ctx"]`` (generated context, second pass) when present;
    otherwise each direction attends to the other's GOLD inputs (leaky, first pass).
    """
    yl, yr = batch["yl"], batch["yr"]  # (B, T+1)
    ctx_l = batch["yl_ctx"][:, :-1] if "yl_ctx" in batch else None
    ctx_r = batch["yr_ctx"][:, :-1] if "yr_ctx" in batch else None
    logits_l, logits_r = model(batch["x"], yl[:, :-1], yr[:, :-1], ctx_l, ctx_r)  # (B, T, V) x 2
    ce_l = masked_cross_entropy(logits_l, yl[:, 1:], yl[:, 1:] != PAD, reduction)
    ce_r = masked_cross_entropy(logits_r, yr[:, 1:], yr[:, 1:] != PAD, reduction)
    return ce_l, ce_r


def target_tokens(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Valid target tokens per direction (the normalisers of the two CEs)."""
    return {"tokens_l2r": (batch["yl"][:, 1:] != PAD).sum(),
            "tokens_r2l": (batch["yr"][:, 1:] != PAD).sum()}


TRAIN_DIRECTIONS = ("both", "l2r", "r2l")


class TitleGenModule(KexueModule):
    """Trains :class:`Seq2Seq` on the CE of the directions selected by ``directions``.

    Both CEs are means over valid target tokens, so the loss is declared as token-normalised
    :class:`~kexue.training.loss.LossTerms` (groups ``tokens_l2r`` / ``tokens_r2l``) and
    accumulation reproduces the token mean of the big batch exactly.

    ``directions="both"`` (bidirectional model, second pass): loss = (CE_l2r + CE_r2l) / 2.
    ``"l2r"`` / ``"r2l"`` (the unidirectional baselines): loss = that direction's CE alone, so
    the encoder is trained by one direction only and the other decoder gets no gradient (it is
    left untrained and must not be evaluated). Both CEs are still returned as metrics (cheap;
    the untrained one is only informative as a sanity check).

    The shared embedding is ``model.embedding`` (``adversarial.embedding: model.embedding``).

    Args:
        model_cfg: Architecture (``cross_attention`` selects bidirectional vs baseline).
        optim: Optimizer settings (``adam`` | ``adafactor`` | ...).
        directions: ``both`` | ``l2r`` | ``r2l`` -- which direction CE(s) form the loss.
    """

    def __init__(self, model_cfg: Seq2SeqConfig, optim: OptimizerConfig | None = None,
                 directions: str = "both") -> None:
        if directions not in TRAIN_DIRECTIONS:
            raise ValueError(f"directions={directions!r} is not valid; use one of "
                             f"{list(TRAIN_DIRECTIONS)} (both = mean of the two direction CEs)")
        if directions != "both" and model_cfg.cross_attention:
            raise ValueError(f"directions={directions!r} needs cross_attention=False: with "
                             "cross-direction attention both decoders are needed; use 'both'")
        super().__init__(optim)
        self.directions = directions
        self.model = Seq2Seq(model_cfg)

    def loss_terms(self, batch: Any) -> LossTerms:
        sum_l, sum_r = direction_losses(self.model, batch, "sum")
        counts = target_tokens(batch)
        weights = {"both": {"l2r": 0.5, "r2l": 0.5}, "l2r": {"l2r": 1.0, "r2l": 0.0},
                   "r2l": {"l2r": 0.0, "r2l": 1.0}}[self.directions]
        terms = LossTerms({"l2r": sum_l, "r2l": sum_r},
                          {"l2r": "tokens_l2r", "r2l": "tokens_r2l"}, counts, weights)
        means = terms.term_means()
        terms.metrics = {"ce_l2r": means["l2r"], "ce_r2l": means["r2l"]}
        return terms

    def loss_counts(self, batch: Any) -> dict[str, Tensor]:
        return target_tokens(batch)


@torch.no_grad()
def evaluate_ce(model: Seq2Seq, loader: Any) -> dict[str, float]:
    """Token-weighted teacher-forced CE per direction over a loader (eval mode, no grad).

    Runs on the model's device (the training device in the pipeline, not the CPU when a GPU
    trained) and sums on that device: one host synchronisation at the end, not one per batch.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    tot = torch.zeros(3, dtype=torch.float64, device=device)  # [sum ce_l2r, sum ce_r2l, tokens]
    for batch in loader:
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        ce_l, ce_r = direction_losses(model, batch)
        n = (batch["yl"][:, 1:] != PAD).sum().double()  # same count in both directions
        tot += torch.stack([ce_l.double() * n, ce_r.double() * n, n])
    model.train(was_training)
    s_l, s_r, count = tot.tolist()
    return {"ce_l2r": s_l / max(count, 1.0), "ce_r2l": s_r / max(count, 1.0)}
