"""Optimizer / scheduler factory tables: names resolve, schedules match their closed forms."""

import math

import pytest
import torch

from kexue.config import ConfigError
from kexue.training.config import OptimizerConfig
from kexue.training.optim import OPTIMIZERS, build_optimizer, build_scheduler


def _params():
    return [torch.nn.Parameter(torch.ones(3, 2))]


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "torch_adafactor"])
def test_builds_named_optimizer(name):
    opt = build_optimizer(OptimizerConfig(name=name, lr=0.1), _params())
    assert opt.param_groups[0]["lr"] == 0.1


def test_unknown_name_lists_choices():
    with pytest.raises(ConfigError, match="adafactor"):
        build_optimizer(OptimizerConfig(name="lamb"), _params())
    assert "adafactor" in OPTIMIZERS


def test_bad_kwargs_fail_with_fix():
    with pytest.raises(ConfigError, match="optimizer.kwargs"):
        build_optimizer(OptimizerConfig(name="adam", kwargs={"bogus": 1}), _params())


def _lrs(cfg, total, n):
    opt = build_optimizer(cfg, _params())
    sched = build_scheduler(cfg, opt, total)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_linear_warmup_closed_form():
    cfg = OptimizerConfig(name="sgd", lr=1.0, scheduler="linear_warmup", warmup_steps=4)
    lrs = _lrs(cfg, total=10, n=10)
    expected = [0.25, 0.5, 0.75, 1.0] + [(10 - s) / 6 for s in range(4, 10)]
    assert lrs == pytest.approx(expected)


def test_cosine_warmup_closed_form():
    cfg = OptimizerConfig(name="sgd", lr=2.0, scheduler="cosine_warmup", warmup_steps=2)
    lrs = _lrs(cfg, total=6, n=6)
    expected = [1.0, 2.0] + [2.0 * 0.5 * (1 + math.cos(math.pi * (s - 2) / 4)) for s in range(2, 6)]
    assert lrs == pytest.approx(expected)


def test_unknown_scheduler():
    cfg = OptimizerConfig(name="sgd", scheduler="poly")
    with pytest.raises(ConfigError, match="scheduler"):
        build_scheduler(cfg, build_optimizer(cfg, _params()), 10)


def test_adafactor_relative_step_can_be_configured() -> None:
    """``lr: null`` reaches AdaFactor's relative step (it was refused as 'expected a number');
    every other optimizer, and a scheduler on top of it, are refused naming the fix."""
    from kexue.config import build_config
    from kexue.training.adafactor import AdaFactor

    cfg = build_config(OptimizerConfig, {"name": "adafactor", "lr": None}, where="optimizer")
    torch.manual_seed(0)
    a, b = torch.nn.Linear(200, 130), torch.nn.Linear(200, 130)
    b.load_state_dict(a.state_dict())
    ours, ref = build_optimizer(cfg, a.parameters()), AdaFactor(b.parameters(), lr=None)
    x = torch.randn(8, 200)
    for model, opt in ((a, ours), (b, ref)):
        model(x).square().mean().backward()
        opt.step()
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=0)
    with pytest.raises(ConfigError, match="only AdaFactor understands"):
        build_config(OptimizerConfig, {"name": "adam", "lr": None}, where="optimizer")
    with pytest.raises(ConfigError, match="scheduler: constant"):
        build_config(OptimizerConfig, {"name": "adafactor", "lr": None,
                                       "scheduler": "cosine_warmup"}, where="optimizer")
