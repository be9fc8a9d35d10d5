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


def _hand_loss(model: VQVAE, x: torch.Tensor, beta: float) -> tuple[float, float, float]:
    """Su's loss from the parts, by hand: nearest code by brute-force distance, decoder on it,
    ``mse(x_hat, x) + mse(sg[z], e) + beta * mse(z, sg[e])`` -> (loss, recon, commitment)."""
    with torch.no_grad():
        z = model.encoder(x)                                          # (B, d, h, w)
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])          # (N, d)
        e = model.quantizer.embedding                                 # (K, d)
        idx = ((flat[:, None, :] - e[None]) ** 2).sum(-1).argmin(1)   # (N,)
        zq = e[idx].view(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
        recon = ((model.decoder(zq) - x) ** 2).mean().item()
        commit = ((z - zq) ** 2).mean().item()
    return recon + commit + beta * commit, recon, commit


def test_vqvae_module_accepts_tuple_batches_and_loss_is_su_sum() -> None:
    torch.manual_seed(0)
    module = VQVAEModule(VQVAEConfig(**SMALL, ema=False)).eval()
    x = _digits(4)
    loss, m = module.compute_loss((x, torch.zeros(4)))
    want, recon, commit = _hand_loss(module.model, x, 0.25)
    assert loss.item() == pytest.approx(want, rel=1e-5)
    assert m["recon_mse"].item() == pytest.approx(recon, rel=1e-5)
    assert m["commitment"].item() == pytest.approx(commit, rel=1e-5)
    assert m["codebook"].item() == pytest.approx(commit, rel=1e-5)   # same value, other gradient
    g_code = torch.autograd.grad(loss, module.model.quantizer.embedding, retain_graph=True)[0]
    g_enc = torch.autograd.grad(loss, next(module.model.encoder.parameters()))[0]
    assert g_code.abs().sum() > 0 and g_enc.abs().sum() > 0          # both sides are trained


def test_a_loss_computed_twice_in_a_step_updates_the_codebook_once() -> None:
    """An adversarial trick computes the loss again in the same step: the EMA codebook still
    takes one step, the one of the step's first (clean) forward, applied at batch end."""
    import copy

    torch.manual_seed(0)
    module = VQVAEModule(VQVAEConfig(**SMALL)).train()
    ref = copy.deepcopy(module.model)
    x = _digits(8)
    before = {k: v.clone() for k, v in module.model.quantizer.state_dict().items()}
    module.on_train_batch_start({"x": x}, 0)
    module.compute_loss({"x": x})
    module.compute_loss({"x": x + 0.3})                      # the perturbed second pass
    after = module.model.quantizer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)   # compute_loss changed nothing
    module.on_before_optimizer_step(None)
    ref.quantizer(ref.encoder(x))                            # the reference: one clean step
    assert ref.quantizer.apply_pending()
    for k, v in ref.quantizer.state_dict().items():
        torch.testing.assert_close(module.model.quantizer.state_dict()[k], v, rtol=0, atol=0)
    assert not torch.equal(before["embedding"], module.model.quantizer.embedding)  # it moved
    assert module.epoch_counts.sum().item() == 8 * 2 * 2     # one step's assignments counted


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
        with torch.no_grad():                 # nats per code by hand: -mean log p(code)
            logp = module.prior(codes).log_softmax(dim=1)                # (B, K, H, W)
            nll = -logp.gather(1, codes[:, None]).mean().item()
            acc = (logp.argmax(1) == codes).float().mean().item()
        assert loss.item() == pytest.approx(nll, rel=1e-5)
        assert m["accuracy"].item() == pytest.approx(acc)


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


def test_accumulation_is_exact_for_the_ema_codebook_too() -> None:
    """The project's VQVAEModule under build_trainer: 2 micro-batches of 8 accumulated give the
    weights AND the EMA codebook / dead-code state of one batch of 16 (the window's statistics
    are one EMA step; before, each micro-batch took its own, an effective decay of 0.99^k)."""
    x = _digits(64, seed=3)
    states = []
    for batch, k in ((16, 1), (8, 2)):
        torch.manual_seed(0)
        # plain SGD: Adam would turn the float noise on the conv biases in front of GroupNorm
        # (whose exact gradient is 0) into full-size steps, in both runs differently
        module = VQVAEModule(VQVAEConfig(**SMALL, dead_code_steps=2),
                             OptimizerConfig(name="sgd", lr=0.5))
        trainer = build_trainer(TrainerConfig(accelerator="cpu", max_epochs=2,
                                              accumulate_grad_batches=k,
                                              enable_progress_bar=False))
        trainer.fit(module, DataLoader(_DictDataset(x), batch_size=batch, shuffle=False))
        states.append(({n: t.detach().clone() for n, t in module.state_dict().items()},
                       module.model.quantizer.restarts.item(), trainer.global_step))
    (big, r_big, s_big), (acc, r_acc, s_acc) = states
    assert s_big == s_acc == 8 and r_big == r_acc
    for name in big:
        torch.testing.assert_close(acc[name], big[name], rtol=1e-4, atol=1e-5, msg=name)
    assert not torch.equal(big["model.quantizer.ema_count"], torch.ones(16))   # it trained
