"""Buffered training metrics (kexue.training.step_metrics): the epoch values Lightning reports are
the sample-weighted means of every micro-batch's loss / metric, recorded independently from what
``training_step`` returned, also when the fit stops early; ``self.log`` runs once per window."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from kexue.training.config import OptimizerConfig, TrainerConfig
from kexue.training.history import EpochMetrics
from kexue.training.module import KexueModule
from kexue.training.trainer import build_trainer


class Classifier(KexueModule):
    """Linear classifier; ``hit`` is a per-sample (B,) metric, ``margin`` a 0-d batch mean."""

    def __init__(self) -> None:
        super().__init__(OptimizerConfig(name="sgd", lr=0.5))
        torch.manual_seed(0)
        self.net = nn.Linear(4, 3)
        self.seen: list[tuple[float, float, float, int]] = []      # independent record

    def compute_loss(self, batch):
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        hit = logits.argmax(-1) == y
        margin = logits.max(-1).values.mean()
        if self.training:
            self.seen.append((float(loss.detach()), float(hit.float().mean()),
                              float(margin.detach()), len(y)))
        return loss, {"hit": hit, "margin": margin.detach()}


class LogCalls(L.Callback):
    """Counts the module's self.log calls during training steps."""

    def on_fit_start(self, trainer, pl_module):
        self.calls = 0
        original = pl_module.log

        def counting(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        pl_module.log = counting


def _data(n: int) -> DataLoader:
    g = torch.Generator().manual_seed(1)
    return DataLoader(TensorDataset(torch.randn(n, 4, generator=g),
                                    torch.randint(0, 3, (n,), generator=g)), batch_size=3)


def _weighted(seen, column: int, upto: int | None = None) -> float:
    rows = seen[:upto]
    return sum(r[column] * r[3] for r in rows) / sum(r[3] for r in rows)


@pytest.mark.parametrize(("k", "every"), [(1, 2), (2, 1), (2, 50)])
def test_epoch_values_are_the_weighted_means_of_every_micro_batch(k: int, every: int) -> None:
    model, history, calls = Classifier(), EpochMetrics(), LogCalls()
    cfg = TrainerConfig(max_epochs=2, accumulate_grad_batches=k, accelerator="cpu",
                        limit_val_batches=0, log_every_n_steps=every)
    trainer = build_trainer(cfg, callbacks=[history, calls])
    # 8 micro-batches of 3 per epoch: full windows, so the back-propagated (window-normalised)
    # loss that is logged equals each batch's mean
    trainer.fit(model, _data(24))
    assert len(model.seen) == 16
    for epoch, row in enumerate(history.rows):
        part = model.seen[8 * epoch:8 * epoch + 8]
        assert row["train_loss"] == pytest.approx(_weighted(part, 0), rel=1e-6)
        assert row["train_hit"] == pytest.approx(_weighted(part, 1), rel=1e-6)
        assert row["train_margin"] == pytest.approx(_weighted(part, 2), rel=1e-6)
    windows = 8 // k                                # optimizer steps per epoch
    flushes = len({min(s, windows) for s in range(every, windows + every, every)})
    assert calls.calls == 2 * 3 * flushes           # 3 metrics per flush, far fewer than 16 x 3


def test_values_up_to_an_early_stop_are_all_logged() -> None:
    """max_steps ends the fit mid-epoch: the last window is flushed before the epoch ends."""
    model, history = Classifier(), EpochMetrics()
    cfg = TrainerConfig(max_epochs=3, max_steps=5, accelerator="cpu", limit_val_batches=0,
                        log_every_n_steps=4)
    trainer = build_trainer(cfg, callbacks=[history])
    trainer.fit(model, _data(20))
    assert trainer.global_step == 5 and len(model.seen) == 5
    assert float(trainer.callback_metrics["train/loss_epoch"]) == pytest.approx(
        _weighted(model.seen, 0), rel=1e-6)
    assert history.rows[-1]["train_loss"] == pytest.approx(_weighted(model.seen, 0), rel=1e-6)


def test_buffer_window_means_and_shape_errors() -> None:
    """Per-sample vectors, 0-d means and (1,) means mix into sample-weighted window means."""
    from kexue.training.step_metrics import StepMetricBuffer

    buf = StepMetricBuffer()
    buf.add("hit", torch.tensor([True, False, True]), 3)
    buf.add("hit", torch.tensor([False]), 1)
    buf.add("loss", torch.tensor(2.0), 3)
    buf.add("loss", torch.tensor([6.0]), 1)             # (1,): a batch mean, not per sample
    means = buf.window_means()
    assert means["hit"][0].item() == pytest.approx(0.5) and means["hit"][1] == 4
    assert means["loss"][0].item() == pytest.approx((2.0 * 3 + 6.0) / 4) and len(buf) == 0
    with pytest.raises(ValueError, match=r"metric 'bad' has shape \(2, 2\).*\(2,\)"):
        buf.add("bad", torch.ones(2, 2), 2)
