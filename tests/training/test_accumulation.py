"""Exact gradient accumulation: parity with a plain torch loop on the big batches (post 6794)."""

from __future__ import annotations

import copy
import warnings

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from kexue.training.accumulation import AccumulationGuard, ExactAccumulation
from kexue.training.config import OptimizerConfig, TrainerConfig
from kexue.training.module import KexueModule
from kexue.training.trainer import build_callbacks, build_trainer

D_IN, D_OUT = 5, 3


class Regressor(KexueModule):
    """BatchNorm-free float64 MLP with a mean-reduced MSE loss."""

    def __init__(self, optim: OptimizerConfig, batchnorm: bool = False) -> None:
        super().__init__(optim)
        layers: list[nn.Module] = [nn.Linear(D_IN, 8)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(8))
        layers += [nn.Tanh(), nn.Linear(8, D_OUT)]
        self.net = nn.Sequential(*layers).double()

    def compute_loss(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y), {}


def _data(n: int) -> TensorDataset:
    g = torch.Generator().manual_seed(n)
    return TensorDataset(torch.randn(n, D_IN, generator=g, dtype=torch.float64),
                         torch.randn(n, D_OUT, generator=g, dtype=torch.float64))


def _fit(model: KexueModule, data, b: int, k: int, epochs: int, exact: bool = True) -> None:
    cfg = TrainerConfig(max_epochs=epochs, accumulate_grad_batches=k, exact_accumulation=exact,
                        accelerator="cpu", limit_val_batches=0)
    trainer = build_trainer(cfg)
    trainer.fit(model, DataLoader(data, batch_size=b, shuffle=False))


def _reference(model: KexueModule, data, big: int, epochs: int,
               optim: OptimizerConfig) -> nn.Module:
    """Independent implementation: plain torch loop over batches of ``big`` = k*b samples."""
    net = copy.deepcopy(model.net)
    opt = (torch.optim.SGD(net.parameters(), lr=optim.lr) if optim.name == "sgd"
           else torch.optim.Adam(net.parameters(), lr=optim.lr))
    for _ in range(epochs):
        for x, y in DataLoader(data, batch_size=big, shuffle=False):
            opt.zero_grad()
            nn.functional.mse_loss(net(x), y).backward()
            opt.step()
    return net


def _max_diff(a: nn.Module, b: nn.Module) -> float:
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters()))


# n samples, micro-batch b, accumulation k: sizes of the micro-batches per epoch in the comment
CASES = [
    pytest.param(36, 4, 3, id="full-windows"),              # 4x9          -> windows 12,12,12
    pytest.param(28, 4, 3, id="partial-window"),            # 4x7          -> 12,12,4 (w=1 < k)
    pytest.param(26, 4, 3, id="partial-small-tail"),        # 4x6 + 2      -> 12,12,2
    pytest.param(22, 4, 3, id="unequal-within-window"),     # 4x5 + 2      -> 12,10 (4,4,2)
]


@pytest.mark.parametrize("name", ["sgd", "adam"])
@pytest.mark.parametrize(("n", "b", "k"), CASES)
def test_exact_parity_with_big_batches(n: int, b: int, k: int, name: str) -> None:
    torch.manual_seed(0)
    optim = OptimizerConfig(name=name, lr=0.1 if name == "sgd" else 0.01)
    model = Regressor(optim)
    data = _data(n)
    ref = _reference(model, data, big=k * b, epochs=2, optim=optim)
    _fit(model, data, b, k, epochs=2)
    assert _max_diff(model.net, ref) < 1e-12


def test_plain_lightning_underweights_the_tail() -> None:
    """Control: without the callback the partial window differs (Lightning #19987)."""
    torch.manual_seed(0)
    optim = OptimizerConfig(name="sgd", lr=0.1)
    model = Regressor(optim)
    data = _data(28)
    ref = _reference(model, data, big=12, epochs=1, optim=optim)
    _fit(model, data, 4, 3, epochs=1, exact=False)
    assert _max_diff(model.net, ref) > 1e-6


def test_equal_weighting_is_not_exact_for_unequal_micro_batches() -> None:
    """Control: weighting micro-batches equally (k/w only) misses the 4,4,2 window."""
    torch.manual_seed(0)
    optim = OptimizerConfig(name="sgd", lr=0.1)
    model = Regressor(optim)
    data = _data(22)
    ref = _reference(model, data, big=12, epochs=1, optim=optim)
    trainer = L.Trainer(max_epochs=1, accumulate_grad_batches=3, logger=False,
                        callbacks=[ExactAccumulation(size_fn=lambda batch: 1)],
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", limit_val_batches=0)
    trainer.fit(model, DataLoader(data, batch_size=4))
    assert _max_diff(model.net, ref) > 1e-6


def test_token_weighting_via_size_fn() -> None:
    """A custom size_fn makes the update equal a weighted mean (e.g. tokens instead of samples)."""
    torch.manual_seed(0)
    x = torch.randn(6, D_IN, dtype=torch.float64)
    y = torch.randn(6, D_OUT, dtype=torch.float64)
    w = torch.tensor([1.0, 3.0, 2.0, 2.0, 5.0, 1.0], dtype=torch.float64)  # "tokens" per sample

    class Weighted(Regressor):
        def compute_loss(self, batch):
            xb, yb, wb = batch
            per = ((self.net(xb) - yb) ** 2).mean(-1)
            return (per * wb).sum() / wb.sum(), {}

    optim = OptimizerConfig(name="sgd", lr=0.5)
    model = Weighted(optim)
    net = copy.deepcopy(model.net)
    per = ((net(x) - y) ** 2).mean(-1)
    ((per * w).sum() / w.sum()).backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.5 * p.grad
    cb = ExactAccumulation(size_fn=lambda batch: float(batch[2].sum()))
    trainer = L.Trainer(max_epochs=1, accumulate_grad_batches=3, callbacks=[cb], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(model, DataLoader(TensorDataset(x, y, w), batch_size=2))
    assert _max_diff(model.net, net) < 1e-12


def test_batchnorm_warning() -> None:
    model = Regressor(OptimizerConfig(), batchnorm=True)
    with pytest.warns(UserWarning, match="BatchNorm"):
        _fit(model, _data(8), 4, 2, epochs=1)


def test_no_batchnorm_warning_without_accumulation_or_bn() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(Regressor(OptimizerConfig(), batchnorm=True), _data(8), 4, 1, epochs=1)
        _fit(Regressor(OptimizerConfig()), _data(8), 4, 2, epochs=1)
    assert not [w for w in caught if "BatchNorm" in str(w.message)]


def test_build_callbacks_accumulation_choice() -> None:
    assert build_callbacks(TrainerConfig(accumulate_grad_batches=1)) == []
    (cb,) = build_callbacks(TrainerConfig(accumulate_grad_batches=2))
    assert isinstance(cb, ExactAccumulation)
    (cb,) = build_callbacks(TrainerConfig(accumulate_grad_batches=2, exact_accumulation=False))
    assert type(cb) is AccumulationGuard


class _Counting(Regressor):
    """Uses a LambdaLR that records every call, to count scheduler steps."""

    def configure_optimizers(self):
        from kexue.training.optim import build_optimizer

        self.opt = build_optimizer(self.optim_cfg, self.parameters())
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda step: 1.0)
        return {"optimizer": self.opt,
                "lr_scheduler": {"scheduler": self.sched, "interval": "step"}}


@pytest.mark.parametrize("name", ["adam", "adafactor"])
def test_scheduler_and_optimizer_count_updates_not_micro_batches(name: str) -> None:
    """accumulate=4 over 9 batches x 2 epochs = ceil(9/4)*2 = 6 updates, not 18."""
    model = _Counting(OptimizerConfig(name=name, lr=1e-3))
    cfg = TrainerConfig(max_epochs=2, accumulate_grad_batches=4, accelerator="cpu",
                        limit_val_batches=0)
    trainer = build_trainer(cfg)
    trainer.fit(model, DataLoader(_data(18), batch_size=2))
    assert trainer.global_step == 6
    assert model.sched.last_epoch == 6
    steps = {int(st["step"]) for st in model.opt.state.values()}
    assert steps == {6}
