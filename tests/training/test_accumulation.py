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


class Weighted(Regressor):
    """Two differently-normalised terms: a "token"-weighted MSE (weights = tokens per sample,
    mean over tokens) plus an L1 term averaged over samples (the entity linker's shape)."""

    def __init__(self, optim: OptimizerConfig, l1: float = 0.5) -> None:
        super().__init__(optim)
        self.l1 = l1

    def loss_terms(self, batch):
        from kexue.training.loss import LossTerms

        xb, yb, wb = batch
        out = self.net(xb)
        per = ((out - yb) ** 2).mean(-1)
        return LossTerms({"mse": (per * wb).sum(), "l1": (out - yb).abs().mean(-1).sum()},
                         {"mse": "tokens", "l1": "samples"},
                         {"tokens": wb.sum(), "samples": float(len(xb))},
                         weights={"mse": 1.0, "l1": self.l1})

    def loss_counts(self, batch):
        return {"tokens": batch[2].sum(), "samples": float(len(batch[0]))}

    compute_loss = KexueModule.compute_loss


def _weighted_reference(model: Weighted, x, y, w, big: int, lr: float) -> nn.Module:
    """Independent: plain SGD on the big batches with the big batch's own token / sample means."""
    net = copy.deepcopy(model.net)
    for i in range(0, len(x), big):
        xb, yb, wb = x[i:i + big], y[i:i + big], w[i:i + big]
        net.zero_grad()
        out = net(xb)
        per = ((out - yb) ** 2).mean(-1)
        loss = (per * wb).sum() / wb.sum() + model.l1 * (out - yb).abs().mean(-1).mean()
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= lr * p.grad
    return net


def _weighted_data(n: int):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(n, D_IN, generator=g, dtype=torch.float64)
    y = torch.randn(n, D_OUT, generator=g, dtype=torch.float64)
    w = torch.randint(1, 9, (n,), generator=g).double()       # "tokens" per sample
    return x, y, w


@pytest.mark.parametrize(("n", "b", "k"), [(12, 2, 3), (14, 2, 3), (11, 2, 3)])
def test_two_normaliser_groups_are_exact(n: int, b: int, k: int) -> None:
    """Token-mean + sample-mean terms, partial and unequal windows: equal to the big batch."""
    torch.manual_seed(0)
    x, y, w = _weighted_data(n)
    model = Weighted(OptimizerConfig(name="sgd", lr=0.3))
    ref = _weighted_reference(model, x, y, w, big=k * b, lr=0.3)
    trainer = build_trainer(TrainerConfig(max_epochs=1, accumulate_grad_batches=k,
                                          accelerator="cpu"))
    trainer.fit(model, DataLoader(TensorDataset(x, y, w), batch_size=b))
    assert _max_diff(model.net, ref) < 1e-12
    # The loader is handed back after fit (the look-ahead wrapper is only for the run).
    assert isinstance(trainer.fit_loop._data_source.instance, DataLoader)


def test_sample_weighting_override_is_not_exact_for_token_losses() -> None:
    """Control: ``accumulation_weighting: samples`` (the old behaviour) misses token counts."""
    torch.manual_seed(0)
    x, y, w = _weighted_data(12)
    model = Weighted(OptimizerConfig(name="sgd", lr=0.3))
    ref = _weighted_reference(model, x, y, w, big=6, lr=0.3)
    trainer = build_trainer(TrainerConfig(max_epochs=1, accumulate_grad_batches=3,
                                          accumulation_weighting="samples", accelerator="cpu"))
    trainer.fit(model, DataLoader(TensorDataset(x, y, w), batch_size=2))
    assert _max_diff(model.net, ref) > 1e-4


def test_sample_weighting_equals_module_weighting_for_sample_means() -> None:
    """For a sample-mean loss both weightings give the big batch (unequal window 4,4,2)."""
    data = _data(22)
    nets = []
    for weighting in ("module", "samples"):
        torch.manual_seed(0)
        model = Regressor(OptimizerConfig(name="sgd", lr=0.1))
        ref = _reference(model, data, big=12, epochs=1, optim=model.optim_cfg)
        trainer = build_trainer(TrainerConfig(max_epochs=1, accumulate_grad_batches=3,
                                              accumulation_weighting=weighting,
                                              accelerator="cpu", limit_val_batches=0))
        trainer.fit(model, DataLoader(data, batch_size=4))
        assert _max_diff(model.net, ref) < 1e-12
        nets.append(model.net)
    assert _max_diff(*nets) < 1e-12


def test_limit_train_batches_truncates_the_window_exactly() -> None:
    """limit_train_batches=5 with k=3: windows (3, 2); the look-ahead must not count batch 6."""
    torch.manual_seed(0)
    x, y, w = _weighted_data(14)
    model = Weighted(OptimizerConfig(name="sgd", lr=0.3))
    ref = _weighted_reference(model, x[:10], y[:10], w[:10], big=6, lr=0.3)
    trainer = build_trainer(TrainerConfig(max_epochs=1, accumulate_grad_batches=3,
                                          limit_train_batches=5, accelerator="cpu"))
    trainer.fit(model, DataLoader(TensorDataset(x, y, w), batch_size=2))
    assert trainer.global_step == 2
    assert _max_diff(model.net, ref) < 1e-12


def test_inconsistent_loss_counts_fail_naming_the_fix() -> None:
    class Wrong(Weighted):
        def loss_counts(self, batch):
            return {"tokens": float(len(batch[0])), "samples": float(len(batch[0]))}

    x, y, w = _weighted_data(8)
    trainer = build_trainer(TrainerConfig(max_epochs=1, accumulate_grad_batches=2,
                                          accelerator="cpu"))
    with pytest.raises(RuntimeError, match="loss_counts.*exact_accumulation: false"):
        trainer.fit(Wrong(OptimizerConfig(name="sgd")), DataLoader(TensorDataset(x, y, w),
                                                                   batch_size=2))


def test_bad_weighting_and_foreign_module_fail_fast() -> None:
    from kexue.config import ConfigError

    with pytest.raises(ConfigError, match="trainer.accumulation_weighting"):
        build_callbacks(TrainerConfig(accumulate_grad_batches=2, accumulation_weighting="tokens"))

    class Plain(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(D_IN, D_OUT).double()

        def training_step(self, batch, batch_idx):
            return nn.functional.mse_loss(self.lin(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = build_trainer(TrainerConfig(max_epochs=1, accumulate_grad_batches=2,
                                          accelerator="cpu"))
    with pytest.raises(ConfigError, match="KexueModule"):
        trainer.fit(Plain(), DataLoader(_data(8), batch_size=2))


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
