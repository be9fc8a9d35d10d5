"""The LightningModules run under the project's Trainer, and a few Adam steps learn."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from kexue.models.vqvae import VQVAE, PriorConfig, PriorModule, VQVAEConfig, VQVAEModule
from kexue.training.config import OptimizerConfig, TrainerConfig
from kexue.training.trainer import build_trainer

SMALL = dict(image_size=8, hidden=16, res_hidden=8, code_dim=4, codebook_size=16)


def _digits(n: int, size: int = 8, seed: int = 0) -> torch.Tensor:
    """MNIST-like images in [-0.5, 0.5]: a few bright strokes on a dark background."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, size, size)
    for i in range(n):
        r, c = torch.randint(1, size - 2, (2,), generator=g).tolist()
        x[i, 0, r, 1:-1] = 1.0
        x[i, 0, 1:-1, c] = 1.0
    return x - 0.5


class _DictDataset(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i]}


def test_vqvae_module_fast_dev_run_logs_epoch_code_usage() -> None:
    torch.manual_seed(0)
    module = VQVAEModule(VQVAEConfig(**SMALL), OptimizerConfig(lr=1e-3))
    loader = DataLoader(_DictDataset(_digits(16)), batch_size=4)
    trainer = build_trainer(TrainerConfig(accelerator="cpu", fast_dev_run=True), fast_dev_run=2)
    trainer.fit(module, loader)
    metrics = trainer.callback_metrics
    assert module.epoch_counts.sum().item() == 2 * 4 * 2 * 2   # 2 batches x 4 images x 2x2 grid
    used = (module.epoch_counts > 0).float().mean().item()
    assert metrics["train/codes_used_frac"].item() == pytest.approx(used)
    assert 1.0 <= metrics["train/epoch_code_perplexity"].item() <= 16.0
    for name in ("recon_mse", "perplexity", "commitment", "codebook"):
        assert f"train/{name}" in metrics


def test_vqvae_module_accepts_tuple_batches_and_loss_is_su_sum() -> None:
    torch.manual_seed(0)
    module = VQVAEModule(VQVAEConfig(**SMALL, ema=False)).eval()
    x = _digits(4)
    loss, m = module.compute_loss((x, torch.zeros(4)))
    want = m["recon_mse"] + m["codebook"] + 0.25 * m["commitment"]
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    assert m["codebook"].item() == pytest.approx(m["commitment"].item(), rel=1e-5)


def test_prior_module_fast_dev_run() -> None:
    torch.manual_seed(0)
    codes = torch.randint(0, 16, (8, 2, 2))
    for kind in ("pixelatt", "pixelcnn"):
        module = PriorModule(PriorConfig(kind=kind, d_model=16, heads=2, pixelcnn_channels=8),
                             16, 2, 2)
        trainer = build_trainer(TrainerConfig(accelerator="cpu", fast_dev_run=True),
                                fast_dev_run=2)
        trainer.fit(module, DataLoader(TensorDataset(codes), batch_size=4))
        assert torch.isfinite(trainer.callback_metrics["train/loss"])
        loss, m = module.compute_loss({"codes": codes})
        assert loss.item() == pytest.approx(m["nll"].item())


def test_a_few_adam_steps_reduce_reconstruction_mse() -> None:
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig(**SMALL, dead_code_steps=5)).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = _digits(32)
    mses = []
    for _ in range(40):
        out = model(x)
        mse = torch.nn.functional.mse_loss(out.x_hat, x)
        loss = mse + out.quant.codebook_loss + 0.25 * out.quant.commitment_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        mses.append(mse.item())
    assert mses[-1] < 0.3 * mses[0], mses


def test_epoch_rows_carry_this_epochs_code_usage_not_the_previous_one() -> None:
    """EpochMetrics runs before the module's on_train_epoch_end: the row of epoch E must still
    hold epoch E's usage (from epoch_end_metrics), and train_perplexity (the batch mean) must not
    be overwritten by the epoch-histogram perplexity (this made resumed histories differ)."""
    from kexue.models.vqvae.quantizer import perplexity_of
    from kexue.training.history import EpochMetrics

    torch.manual_seed(0)
    module = VQVAEModule(VQVAEConfig(**SMALL), OptimizerConfig(lr=1e-3))
    epochs = EpochMetrics()
    trainer = build_trainer(TrainerConfig(accelerator="cpu", max_epochs=2),
                            callbacks=[epochs])
    trainer.fit(module, DataLoader(_DictDataset(_digits(16)), batch_size=4))
    rows = epochs.rows
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all("train_codes_used_frac" in r and "train_epoch_code_perplexity" in r for r in rows)
    last = module.epoch_counts                                   # epoch 2's histogram
    assert rows[1]["train_codes_used_frac"] == pytest.approx(float((last > 0).float().mean()))
    assert rows[1]["train_epoch_code_perplexity"] == pytest.approx(float(perplexity_of(last)))
    assert rows[1]["train_perplexity"] == pytest.approx(
        float(trainer.callback_metrics["train/perplexity"]))
