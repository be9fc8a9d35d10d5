"""EMA callback: hand-computed average over 3 updates, swap for validation and restore, export."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from kexue.config import ConfigError
from kexue.training.config import EMAConfig, OptimizerConfig, TrainerConfig
from kexue.training.ema import EMA
from kexue.training.module import KexueModule
from kexue.training.trainer import build_trainer

DECAY = 0.5


class Lin(KexueModule):
    def __init__(self) -> None:
        super().__init__(OptimizerConfig(name="sgd", lr=0.3))
        torch.manual_seed(0)
        self.net = nn.Linear(3, 2)

    def compute_loss(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y), {}


def _loader(n: int, b: int = 2) -> DataLoader:
    g = torch.Generator().manual_seed(3)
    return DataLoader(TensorDataset(torch.randn(n, 3, generator=g), torch.randn(n, 2, generator=g)),
                      batch_size=b)


class Recorder(L.Callback):
    """Parameters after every optimizer step, and what validation saw."""

    def __init__(self) -> None:
        self.after_step: list[dict[str, torch.Tensor]] = []
        self.seen_in_val: dict[str, torch.Tensor] | None = None
        self._step = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step != self._step:
            self._step = trainer.global_step
            self.after_step.append({n: p.detach().clone() for n, p in pl_module.named_parameters()})

    def on_validation_start(self, trainer, pl_module):   # runs after EMA's (callback order)
        if not trainer.sanity_checking:
            self.seen_in_val = {n: p.detach().clone() for n, p in pl_module.named_parameters()}


def _fit(k: int, n_batches: int, val: bool = False):
    model = Lin()
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    rec = Recorder()
    cfg = TrainerConfig(max_epochs=1, accumulate_grad_batches=k, accelerator="cpu",
                        limit_val_batches=1.0 if val else 0)
    trainer = build_trainer(cfg, ema=EMAConfig(decay=DECAY), callbacks=[rec],
                            num_sanity_val_steps=0)
    trainer.fit(model, _loader(2 * n_batches), _loader(4) if val else None)
    return model, initial, rec, EMA.find(trainer)


def _hand_ema(initial, steps):
    ema = {n: v.clone() for n, v in initial.items()}
    for params in steps:
        for n in ema:
            ema[n] = DECAY * ema[n] + (1 - DECAY) * params[n]
    return ema


@pytest.mark.parametrize(("k", "n_batches"), [(1, 3), (2, 6)])
def test_ema_matches_hand_computation_over_three_updates(k: int, n_batches: int) -> None:
    model, initial, rec, ema = _fit(k, n_batches)
    assert ema is not None and ema.num_updates == 3 and len(rec.after_step) == 3
    expected = _hand_ema(initial, rec.after_step)
    for n, v in expected.items():
        assert ema.shadow[n].dtype == torch.float32
        torch.testing.assert_close(ema.shadow[n], v, rtol=0, atol=1e-7)
        assert not torch.allclose(v, rec.after_step[-1][n])        # EMA really lags


def test_validation_uses_ema_and_restores_training_weights() -> None:
    model, _, rec, ema = _fit(1, 3, val=True)
    assert rec.seen_in_val is not None
    for n, p in model.named_parameters():
        torch.testing.assert_close(rec.seen_in_val[n], ema.shadow[n], rtol=0, atol=0)
        assert torch.equal(p.detach(), rec.after_step[-1][n])      # swapped back bit-exactly


def test_export_apply_to_and_state_dict() -> None:
    model, _, rec, ema = _fit(1, 3)
    state = ema.ema_state_dict(model)
    assert torch.equal(state["net.weight"], ema.shadow["net.weight"])
    assert torch.equal(model.net.weight.detach(), rec.after_step[-1]["net.weight"])   # untouched
    other = copy.deepcopy(model)
    ema.apply_to(other)
    assert torch.equal(other.net.bias.detach(), ema.shadow["net.bias"])
    restored = EMA(DECAY)
    restored.load_state_dict(ema.state_dict())
    assert torch.equal(restored.shadow["net.weight"], ema.shadow["net.weight"])


def test_test_stage_swaps_and_restores() -> None:
    model, _, _, ema = _fit(1, 3)
    trained = model.net.weight.detach().clone()
    seen = {}

    class Peek(L.Callback):
        def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            seen["w"] = pl_module.net.weight.detach().clone()

    trainer = L.Trainer(callbacks=[ema, Peek()], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.test(model, _loader(4), verbose=False)
    assert torch.equal(seen["w"], ema.shadow["net.weight"])
    assert torch.equal(model.net.weight.detach(), trained)


def test_ema_off_and_bad_decay() -> None:
    trainer = build_trainer(TrainerConfig(accelerator="cpu"), ema=EMAConfig(decay=0.0))
    assert EMA.find(trainer) is None
    with pytest.raises(ConfigError, match=r"ema\.decay"):
        build_trainer(TrainerConfig(accelerator="cpu"), ema=EMAConfig(decay=1.0))
