"""LightningModules: loss composition, a few Adamax steps learn, fast_dev_run, sizes."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from kexue.models.nvae import (
    NVAE,
    ConvVAE,
    NVAEConfig,
    NVAEModule,
    VAEConfig,
    VAEModule,
    count_params,
    nvae_optimizer,
)
from kexue.training.config import TrainerConfig
from kexue.training.optim import build_optimizer, build_scheduler
from kexue.training.trainer import build_trainer
from tests.models.nvae._helpers import binary_digits, tiny_nvae_cfg, tiny_vae_cfg


class _DictDataset(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i]}


def _modules() -> list:
    return [NVAEModule(tiny_nvae_cfg()), VAEModule(tiny_vae_cfg())]


@pytest.mark.parametrize("which", [0, 1])
def test_a_few_adamax_steps_reduce_the_loss(which: int) -> None:
    torch.manual_seed(0)
    module = _modules()[which].train()
    x = binary_digits(32)
    opt = build_optimizer(module.optim_cfg, module.parameters())
    assert isinstance(opt, torch.optim.Adamax) and opt.defaults["eps"] == 1e-3
    losses = []
    for _ in range(12):
        loss, metrics = module.compute_loss({"x": x})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert metrics["beta"].item() == 1.0           # no Trainer, no total_steps: warm-up off
    assert sum(losses[-3:]) / 3 < losses[0] - 50.0, losses


def test_loss_is_recon_plus_beta_kl_plus_regulariser() -> None:
    torch.manual_seed(0)
    module = NVAEModule(tiny_nvae_cfg(kl_balance=False), total_steps=1000).eval()
    x = binary_digits(4)
    loss, m = module.compute_loss((x, torch.zeros(4)))
    assert m["beta"].item() == pytest.approx(1e-4)                  # global_step 0
    reg = 1e-2 * (m["spectral"] + m["bn"])
    assert loss.item() == pytest.approx((m["recon"] + 1e-4 * m["kl"] + reg).item(), rel=1e-5)
    assert m["elbo"].item() == pytest.approx(-(m["recon"] + m["kl"]).item(), rel=1e-6)


def test_dynamic_binarisation_only_in_training() -> None:
    module = VAEModule(tiny_vae_cfg()).eval()
    x = torch.full((2, 1, 28, 28), 0.5)
    torch.manual_seed(0)
    a = module.compute_loss({"x": x})[1]["recon"]
    torch.manual_seed(0)
    b = module.compute_loss({"x": x})[1]["recon"]
    assert a.item() == b.item()               # eval: no binarisation, same sample
    module.train()
    seen = []
    orig = module.model.forward
    module.model.forward = lambda inp: (seen.append(inp), orig(inp))[1]
    module.compute_loss({"x": x})
    assert set(seen[0].unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("which", [0, 1])
def test_fast_dev_run_with_dict_batches(which: int) -> None:
    torch.manual_seed(0)
    module = _modules()[which]
    trainer = build_trainer(TrainerConfig(accelerator="cpu", fast_dev_run=True))
    trainer.fit(module, DataLoader(_DictDataset(binary_digits(8)), batch_size=4))
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"])
    for name in ("recon", "kl", "elbo", "beta"):
        assert f"train/{name}" in metrics
    assert isinstance(trainer.optimizers[0], torch.optim.Adamax)


def test_nvae_optimizer_warmup_then_cosine() -> None:
    opt = build_optimizer(nvae_optimizer(warmup_steps=4), [torch.nn.Parameter(torch.zeros(1))])
    sched = build_scheduler(nvae_optimizer(warmup_steps=4), opt, total_steps=14)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([2.5e-3, 5e-3, 7.5e-3, 1e-2])
    assert lrs[9] == pytest.approx(0.5e-2)                           # half-way through the decay
    assert opt.param_groups[0]["weight_decay"] == 3e-4


def test_default_sizes_match_within_factor_1_5_and_shapes() -> None:
    nvae, vae = NVAE(NVAEConfig()), ConvVAE(VAEConfig())
    n, v = count_params(nvae), count_params(vae)
    assert max(n, v) / min(n, v) < 1.5, (n, v)
    x = binary_digits(2)
    for model in (nvae, vae):
        out = model(x)
        assert out.params.shape == (2, 1, 28, 28)
        assert out.log_q.shape == out.log_p.shape == (2,)
        assert all(k.shape == (2,) and (k >= 0).all() for k in out.kl_per_group)
    assert len(nvae(x).kl_per_group) == 4


def test_mixture_likelihood_colour_model_runs() -> None:
    torch.manual_seed(0)
    cfg = tiny_nvae_cfg(in_channels=3, image_size=32, likelihood="logistic_mixture", n_mix=2)
    model = NVAE(cfg)
    x = torch.randint(0, 256, (2, 3, 32, 32)) / 255.0
    out = model(x)
    assert out.params.shape == (2, 2 * 10, 32, 32)
    ll = model.log_likelihood(out.params, x)
    assert ll.shape == (2,) and torch.isfinite(ll).all() and (ll < 0).all()
    s = model.sample(2)
    assert s.shape == (2, 3, 32, 32) and s.min() >= 0 and s.max() <= 1


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="dec_cell"):
        NVAEConfig(dec_cell="conv").validate()
    with pytest.raises(ValueError, match="likelihood"):
        VAEConfig(likelihood="gauss").validate()
    assert NVAEConfig().padded_size == 32 and NVAEConfig(scales=3).padded_size == 32
    NVAEConfig(enc_cell="mbconv", dec_cell="res", se=False, res_dist=False).validate()
    NVAE(tiny_nvae_cfg(enc_cell="mbconv", dec_cell="res", se=False, res_dist=False,
                       learned_prior_ftr0=False))(binary_digits(2))
