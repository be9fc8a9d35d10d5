"""One row of scalar metrics per training epoch, for any :class:`KexueModule` (no logger files).

The rows go into the model bundle (``history["epochs"]``) and, through the catalog's tracking
metadata, to MLflow as per-epoch metrics (:mod:`kexue.tracking`).
"""

from __future__ import annotations

from typing import Any

import lightning as L


class EpochMetrics(L.Callback):
    """After every training epoch: ``epoch``, ``optimizer_steps`` and every scalar
    ``trainer.callback_metrics`` entry (``train/loss_epoch`` -> ``train_loss``, ``val/ce_l2r`` ->
    ``val_ce_l2r``; step-level ``*_step`` values are skipped)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row: dict[str, Any] = {"epoch": trainer.current_epoch + 1,
                               "optimizer_steps": int(trainer.global_step)}
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.endswith("_step") or getattr(value, "numel", lambda: 1)() != 1:
                continue
            row[key.removesuffix("_epoch").replace("/", "_")] = float(value)
        # Metrics a module logs in its own on_train_epoch_end reach callback_metrics only after
        # this hook (Lightning calls callbacks first); a module hands them over here instead.
        extra = getattr(pl_module, "epoch_end_metrics", None)
        for key, value in (extra() if callable(extra) else {}).items():
            row[key.replace("/", "_")] = float(value)
        self.rows.append(row)

    def state_dict(self) -> dict[str, Any]:          # kept in checkpoints: resume keeps rows
        return {"rows": list(self.rows)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = list(state.get("rows", []))
