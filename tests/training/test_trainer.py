"""build_trainer wiring: callbacks from configs, fail-fast checks, fast_dev_run smoke per trick."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from kexue.config import ConfigError, build_config
from kexue.training.accumulation import ExactAccumulation
from kexue.training.adversarial import FGM
from kexue.training.config import AdversarialConfig, EMAConfig, OptimizerConfig, TrainerConfig
from kexue.training.distributed import SpawnDDPStrategy
from kexue.training.ema import EMA
from kexue.training.gradient_penalty import GradientPenalty
from kexue.training.module import KexueModule
from kexue.training.trainer import build_callbacks, build_trainer


class Classifier(KexueModule):
    """Token classifier: Embedding -> mean -> Linear (float32, as pipelines use)."""

    def __init__(self) -> None:
        super().__init__(OptimizerConfig(name="adamw", lr=1e-2, scheduler="linear_warmup",
                                         warmup_steps=1))
        self.embedding = nn.Embedding(11, 8)
        self.out = nn.Linear(8, 3)

    def compute_loss(self, batch):
        x, y = batch
        logits = self.out(self.embedding(x).mean(1))                 # (B, 3)
        loss = nn.functional.cross_entropy(logits, y)
        return loss, {"acc": (logits.argmax(-1) == y).float().mean()}


def _loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randint(0, 11, (8, 6), generator=g),
                                    torch.randint(0, 3, (8,), generator=g)), batch_size=4)


TRICKS = {
    "plain": ({}, None, None),
    "accumulate": ({"accumulate_grad_batches": 2}, None, None),
    "fgm-su": ({}, {"method": "fgm", "epsilon": 0.5}, None),
    "fgm-sum-accum-clip": ({"accumulate_grad_batches": 2, "gradient_clip_val": 1.0},
                           {"method": "fgm", "mode": "sum"}, None),
    "gp": ({}, {"method": "gp", "epsilon": 1.0}, None),
    "ema": ({}, None, {"decay": 0.9}),
    "all-bf16": ({"accumulate_grad_batches": 2, "precision": "bf16-mixed"},
                 {"method": "fgm"}, {"decay": 0.99}),
}


@pytest.mark.parametrize("name", list(TRICKS))
def test_fast_dev_run_smoke(name: str) -> None:
    trainer_p, adv_p, ema_p = TRICKS[name]
    cfg = build_config(TrainerConfig, {"accelerator": "cpu", **trainer_p}, where="params:t.trainer")
    adv = build_config(AdversarialConfig, adv_p, where="params:t.adversarial") if adv_p else None
    ema = build_config(EMAConfig, ema_p, where="params:t.ema") if ema_p else None
    model = Classifier()
    before = model.out.weight.detach().clone()
    trainer = build_trainer(cfg, adv, ema, fast_dev_run=True)
    trainer.fit(model, _loader(), _loader())
    assert trainer.global_step == 1
    assert not torch.equal(before, model.out.weight)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_callbacks_order_and_types() -> None:
    cbs = build_callbacks(TrainerConfig(accumulate_grad_batches=3),
                          AdversarialConfig(method="fgm", epsilon=0.3, mode="sum",
                                            embedding="enc.tok"),
                          EMAConfig(decay=0.99))
    assert [type(c) for c in cbs] == [ExactAccumulation, FGM, EMA]
    assert (cbs[1].epsilon, cbs[1].mode, cbs[1].embedding) == (0.3, "sum", "enc.tok")
    assert cbs[2].decay == 0.99
    (gp,) = build_callbacks(TrainerConfig(), AdversarialConfig(method="gp", epsilon=2.0))
    assert isinstance(gp, GradientPenalty) and gp.epsilon == 2.0
    assert build_callbacks(TrainerConfig(), AdversarialConfig(), EMAConfig()) == []


def test_extra_callbacks_are_appended() -> None:
    extra = EMA(0.5)
    trainer = build_trainer(TrainerConfig(accelerator="cpu"), callbacks=[extra])
    assert extra in trainer.callbacks


@pytest.mark.parametrize(("adv", "ema", "key"), [
    (AdversarialConfig(method="fgm", epsilon=0.0), None, "adversarial.epsilon"),
    (AdversarialConfig(method="gp", embedding=""), None, "adversarial.embedding"),
    (AdversarialConfig(method="pgd"), None, "adversarial.method"),
    (None, EMAConfig(decay=-0.1), "ema.decay"),
])
def test_bad_settings_fail_fast_naming_the_key(adv, ema, key) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_trainer(TrainerConfig(accelerator="cpu"), adv, ema)


def test_bad_accumulation_fails() -> None:
    cfg = TrainerConfig(accelerator="cpu")
    cfg.accumulate_grad_batches = 0
    with pytest.raises(ConfigError, match=r"trainer\.accumulate_grad_batches"):
        build_trainer(cfg)


def test_missing_embedding_fails_at_fit_start_listing_candidates() -> None:
    trainer = build_trainer(TrainerConfig(accelerator="cpu"),
                            AdversarialConfig(method="fgm", embedding="encoder.embedding"),
                            fast_dev_run=True)
    with pytest.raises(ConfigError, match=r"adversarial\.embedding.*\['embedding'\]"):
        trainer.fit(Classifier(), _loader())


def test_implicit_ddp_is_rejected_by_what_lightning_resolves() -> None:
    """devices=2 with strategy auto resolves to ddp (re-runs argv per rank): refused; the same
    with ddp_spawn, or one device, is accepted. The check inspects the resolved launcher."""
    with pytest.raises(ConfigError, match="ddp_spawn"):
        build_trainer(TrainerConfig(accelerator="cpu", devices=2))
    spawn = build_trainer(TrainerConfig(accelerator="cpu", devices=2, strategy="ddp_spawn"))
    assert isinstance(spawn.strategy, SpawnDDPStrategy) and spawn.num_devices == 2
    assert spawn.strategy.launcher.__class__.__name__ == "_StatefulSpawnLauncher"
    assert build_trainer(TrainerConfig(accelerator="cpu", devices=1)).num_devices == 1


def test_progress_bar_auto_follows_the_terminal(monkeypatch) -> None:
    """auto: a bar on a TTY, none when stderr is a pipe (cron, Airflow) or under CI."""
    import sys

    from kexue.training.trainer import progress_bar

    class _Stream:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

        def write(self, *_):
            return 0

        def flush(self) -> None:
            pass

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys, "stderr", _Stream(True))
    assert progress_bar("auto") is True and progress_bar(False) is False
    monkeypatch.setattr(sys, "stderr", _Stream(False))
    assert progress_bar("auto") is False and progress_bar(True) is True
    monkeypatch.setattr(sys, "stderr", _Stream(True))
    monkeypatch.setenv("CI", "true")
    assert progress_bar("auto") is False
    with pytest.raises(ConfigError, match="enable_progress_bar"):
        build_config(TrainerConfig, {"enable_progress_bar": "sometimes"}, where="x.trainer")


def test_loader_settings_reach_the_dataloader_arguments_and_fail_naming_the_key() -> None:
    from kexue.config import ConfigError, build_config

    cfg = build_config(TrainerConfig, {"num_workers": 2, "pin_memory": True,
                                       "persistent_workers": True, "accelerator": "gpu"})
    assert cfg.loader_kwargs() == {"num_workers": 2, "pin_memory": True,
                                   "persistent_workers": True}
    cpu = build_config(TrainerConfig, {"pin_memory": True, "accelerator": "cpu"})
    assert cpu.loader_kwargs() == {"num_workers": 0, "pin_memory": False,
                                   "persistent_workers": False}
    with pytest.raises(ConfigError, match=r"trainer.*persistent_workers.*num_workers > 0"):
        build_config(TrainerConfig, {"persistent_workers": True}, where="tricks.trainer")
    with pytest.raises(ConfigError, match="num_workers=-1"):
        build_config(TrainerConfig, {"num_workers": -1})


def test_every_training_loader_takes_the_loader_settings() -> None:
    """Title generation, entity linking and text classification build their loaders with
    ``TrainerConfig.loader_kwargs()`` (conf/gpu sets workers and pinned memory)."""
    import inspect

    import torch

    from kexue.models.entity_linking import training as el
    from kexue.models.textcls import training as tc
    from kexue.models.title_gen import training as tg
    from kexue.training.config import TrainerConfig

    cfg = TrainerConfig(num_workers=2, pin_memory=True, persistent_workers=True)
    loader = tc.train_loader(torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long),
                             2, 0, cfg.loader_kwargs())
    assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == (2, True, True)
    for module in (el, tg):
        assert "trainer_cfg.loader_kwargs()" in inspect.getsource(module)
