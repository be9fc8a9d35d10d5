"""FGM and gradient-penalty callbacks vs hand-computed torch-autograd references (post 7234)."""

from __future__ import annotations

import copy
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from kexue.config import ConfigError
from kexue.training.adversarial import FGM
from kexue.training.config import AdversarialConfig, OptimizerConfig, TrainerConfig
from kexue.training.gradient_penalty import GradientPenalty
from kexue.training.module import KexueModule
from kexue.training.trainer import build_trainer

V, D, C, LEN = 7, 3, 4, 5


class TinyText(KexueModule):
    """Embedding -> mean over positions -> Linear, cross-entropy (float64 unless told)."""

    def __init__(self, optim: OptimizerConfig | None = None, dtype=torch.float64) -> None:
        super().__init__(optim or OptimizerConfig(name="sgd", lr=1.0))
        torch.manual_seed(0)
        self.encoder = nn.ModuleDict({"tok": nn.Embedding(V, D)})
        self.head = nn.Linear(D, C)
        self.to(dtype)

    def compute_loss(self, batch):
        x, y = batch
        logits = self.head(self.encoder["tok"](x).mean(1))      # (B, C)
        return nn.functional.cross_entropy(logits, y), {}


def _data(n: int) -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randint(0, V, (n, LEN), generator=g),
                         torch.randint(0, C, (n,), generator=g))


class RestoreCheck(L.Callback):
    """Embedding weights must be bit-identical before/after each micro-batch's FGM round trip."""

    def __init__(self) -> None:
        self.checked = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before = pl_module.encoder["tok"].weight.detach().clone()
        self.step = trainer.global_step

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        assert torch.equal(pl_module.encoder["tok"].weight, self.before)
        self.checked += 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:          # accumulating: no update yet
            assert torch.equal(pl_module.encoder["tok"].weight, self.before)
            self.checked += 1


def _one_step(adv: AdversarialConfig, k: int, n: int = 6,
              **trainer_kw) -> tuple[TinyText, TinyText, RestoreCheck]:
    """One optimizer update from k micro-batches of n/k samples -> (trained, initial, check)."""
    model = TinyText()
    initial = copy.deepcopy(model)
    check = RestoreCheck()
    cfg = TrainerConfig(max_steps=1, accumulate_grad_batches=k, accelerator="cpu",
                        limit_val_batches=0)
    trainer = build_trainer(cfg, adv, callbacks=[check], **trainer_kw)
    trainer.fit(model, DataLoader(_data(n), batch_size=n // k))
    assert trainer.global_step == 1
    return model, initial, check


def _grads(model: TinyText, batch, perturb: torch.Tensor | None = None) -> list[torch.Tensor]:
    """d loss / d params at E (+ perturb), plain autograd."""
    m = copy.deepcopy(model)
    if perturb is not None:
        with torch.no_grad():
            m.encoder["tok"].weight += perturb
    loss, _ = m.compute_loss(batch)
    return list(torch.autograd.grad(loss, list(m.parameters())))


def _reference_fgm(model: TinyText, batches, eps: float, mode: str,
                   g_scale: float = 1.0) -> list[torch.Tensor]:
    """Su's FGM on the embedding matrix; returns parameters after one SGD(lr=1) step.

    ``g_scale``: FGM normalises dJ/dE with J = k * (this micro-batch's share of the window
    loss); for a window of w < k equal micro-batches that is (k / w) * the batch mean's
    gradient. Only the 1e-8 in the norm can see the scale.
    """
    names = [n for n, _ in model.named_parameters()]
    emb_idx = names.index("encoder.tok.weight")
    total = [torch.zeros_like(p) for p in model.parameters()]
    for batch in batches:
        clean = _grads(model, batch)
        g = clean[emb_idx] * g_scale
        delta = eps * g / (g.norm() + 1e-8)
        adv = _grads(model, batch, delta)
        for t, c, a in zip(total, clean, adv):
            t += (a + c if mode == "sum" else a) / len(batches)
    return [p.detach() - t for p, t in zip(model.parameters(), total)]


def _big_batch_gp(model: TinyText, x, y, eps: float):
    """Independent reference: Su's penalised objective on ONE big batch, plain autograd."""
    m = copy.deepcopy(model)
    e = m.encoder["tok"](x)                                   # (B, L, D)
    loss = nn.functional.cross_entropy(m.head(e.mean(1)), y)
    (ge,) = torch.autograd.grad(loss, e, create_graph=True)
    penalty = 0.5 * eps * (ge ** 2).sum()
    return m, loss + penalty, float(penalty)


def _reference_gp(model: TinyText, windows, eps: float) -> list[torch.Tensor]:
    """SGD(lr=1) steps, one per window, each on the window's concatenated big batch."""
    m = copy.deepcopy(model)
    for window in windows:
        x = torch.cat([w[0] for w in window])
        y = torch.cat([w[1] for w in window])
        mm, objective, _ = _big_batch_gp(m, x, y, eps)
        grads = torch.autograd.grad(objective, list(mm.parameters()))
        with torch.no_grad():
            for p, g in zip(m.parameters(), grads):
                p -= g
    return [p.detach() for p in m.parameters()]


def _batches(n: int, k: int):
    return list(DataLoader(_data(n), batch_size=n // k))


def _assert_params(model: nn.Module, expected: list[torch.Tensor]) -> None:
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("mode", ["su", "sum"])
def test_fgm_matches_reference_and_restores_weights(mode: str, k: int) -> None:
    eps = 0.7
    model, initial, check = _one_step(AdversarialConfig(method="fgm", epsilon=eps, mode=mode,
                                                        embedding="encoder.tok"), k)
    _assert_params(model, _reference_fgm(initial, _batches(6, k), eps, mode))
    assert check.checked == k                      # every micro-batch restored bit-exactly


def test_fgm_su_and_sum_differ_and_differ_from_plain() -> None:
    adv = dict(method="fgm", epsilon=0.7, embedding="encoder.tok")
    su, _, _ = _one_step(AdversarialConfig(mode="su", **adv), 2)
    summed, _, _ = _one_step(AdversarialConfig(mode="sum", **adv), 2)
    plain, _, _ = _one_step(AdversarialConfig(method="none"), 2)
    for a, b in [(su, summed), (su, plain), (summed, plain)]:
        assert not torch.allclose(a.head.weight, b.head.weight, atol=1e-6)


class PenaltyLog(L.Callback):
    """Collects GradientPenalty.last_penalty after every micro-batch."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        gp = next(cb for cb in trainer.callbacks if isinstance(cb, GradientPenalty))
        self.values.append(gp.last_penalty)


# (n samples, micro-batch b, k): windows of the epoch
GP_CASES = [
    pytest.param(8, 8, 1, id="k1"),
    pytest.param(8, 4, 2, id="k2"),
    pytest.param(8, 2, 4, id="k4"),
    pytest.param(10, 3, 4, id="k4-unequal-3-3-3-1"),
    pytest.param(10, 2, 4, id="k4-partial-window-8-2"),
]


@pytest.mark.parametrize(("n", "b", "k"), GP_CASES)
def test_gradient_penalty_equals_the_big_batch_penalty(n: int, b: int, k: int) -> None:
    """k micro-batches give exactly the penalised big-batch update (was k x the penalty)."""
    eps = 1.3
    adv = AdversarialConfig(method="gp", epsilon=eps, embedding="encoder.tok")
    model = TinyText()
    initial = copy.deepcopy(model)
    log = PenaltyLog()
    cfg = TrainerConfig(max_epochs=1, accumulate_grad_batches=k, accelerator="cpu",
                        limit_val_batches=0)
    trainer = build_trainer(cfg, adv, callbacks=[log])
    trainer.fit(model, DataLoader(_data(n), batch_size=b))
    micro = list(DataLoader(_data(n), batch_size=b))
    windows = [micro[i:i + k] for i in range(0, len(micro), k)]
    assert trainer.global_step == len(windows)
    _assert_params(model, _reference_gp(initial, windows, eps))
    # The first window's micro-batch penalties add up to the big batch's penalty (ratio 1).
    x = torch.cat([w[0] for w in windows[0]])
    y = torch.cat([w[1] for w in windows[0]])
    _, _, big = _big_batch_gp(initial, x, y, eps)
    assert sum(log.values[:len(windows[0])]) == pytest.approx(big, rel=1e-10)
    plain = TinyText()
    build_trainer(cfg).fit(plain, DataLoader(_data(n), batch_size=b))
    assert not torch.allclose(model.head.weight, plain.head.weight, atol=1e-6)


def test_fgm_with_exact_accumulation_partial_window() -> None:
    """3 micro-batches with k=2: the tail window (w=1) is re-weighted by ExactAccumulation."""
    eps = 0.5
    model = TinyText()
    initial = copy.deepcopy(model)
    cfg = TrainerConfig(max_epochs=1, accumulate_grad_batches=2, accelerator="cpu",
                        limit_val_batches=0)
    adv = AdversarialConfig(method="fgm", epsilon=eps, embedding="encoder.tok")
    trainer = build_trainer(cfg, adv)
    trainer.fit(model, DataLoader(_data(6), batch_size=2))
    assert trainer.global_step == 2
    batches = list(DataLoader(_data(6), batch_size=2))
    after_first = _reference_fgm(initial, batches[:2], eps, "su")
    second = copy.deepcopy(initial)
    with torch.no_grad():
        for p, v in zip(second.parameters(), after_first):
            p.copy_(v)
    _assert_params(model, _reference_fgm(second, batches[2:], eps, "su", g_scale=2.0))


@pytest.mark.parametrize("method", ["fgm", "gp"])
def test_bf16_mixed_with_clipping_runs_and_restores(method: str) -> None:
    model = TinyText(OptimizerConfig(name="adam", lr=1e-2), dtype=torch.float32)
    check = RestoreCheck()
    cfg = TrainerConfig(max_epochs=1, accumulate_grad_batches=2, accelerator="cpu",
                        limit_val_batches=0, precision="bf16-mixed", gradient_clip_val=0.1)
    adv = AdversarialConfig(method=method, epsilon=0.5, embedding="encoder.tok")
    trainer = build_trainer(cfg, adv, callbacks=[check])
    trainer.fit(model, DataLoader(_data(8), batch_size=2))
    assert trainer.global_step == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())
    if method == "fgm":
        assert check.checked == 4
        (fgm,) = [cb for cb in trainer.callbacks if isinstance(cb, FGM)]
        assert fgm.last_delta_norm == pytest.approx(0.5, rel=1e-3)
    else:
        (gp,) = [cb for cb in trainer.callbacks if isinstance(cb, GradientPenalty)]
        assert gp.last_penalty > 0


@pytest.mark.parametrize("method", ["fgm", "gp"])
def test_wrong_embedding_path_names_key_and_candidates(method: str) -> None:
    trainer = build_trainer(TrainerConfig(accelerator="cpu", max_steps=1),
                            AdversarialConfig(method=method, embedding="embedding"))
    with pytest.raises(ConfigError, match=r"adversarial\.embedding.*encoder\.tok"):
        trainer.fit(TinyText(), DataLoader(_data(4), batch_size=2))
    trainer = build_trainer(TrainerConfig(accelerator="cpu", max_steps=1),
                            AdversarialConfig(method=method, embedding="head"))
    with pytest.raises(ConfigError, match="is a Linear, not nn.Embedding"):
        trainer.fit(TinyText(), DataLoader(_data(4), batch_size=2))


class TinyAttention(TinyText):
    """Adds a TransformerEncoderLayer: fused CPU attention has no double backward."""

    def __init__(self) -> None:
        super().__init__(OptimizerConfig(name="sgd", lr=0.1), dtype=torch.float32)
        self.block = nn.TransformerEncoderLayer(D + 1, 1, 8, dropout=0.0, batch_first=True)
        self.encoder["tok"] = nn.Embedding(V, D + 1)
        self.head = nn.Linear(D + 1, C)

    def compute_loss(self, batch):
        x, y = batch
        h = self.block(self.encoder["tok"](x))                       # (B, L, D+1)
        return nn.functional.cross_entropy(self.head(h.mean(1)), y), {}


def test_gradient_penalty_through_attention_uses_math_sdpa() -> None:
    model = TinyAttention()
    cfg = TrainerConfig(max_steps=2, accelerator="cpu", limit_val_batches=0)
    trainer = build_trainer(cfg, AdversarialConfig(method="gp", embedding="encoder.tok"))
    trainer.fit(model, DataLoader(_data(4), batch_size=2))
    assert trainer.global_step == 2
    with pytest.raises(RuntimeError, match="derivative for .* not implemented"):
        trainer = build_trainer(cfg, callbacks=[GradientPenalty(embedding="encoder.tok",
                                                                math_attention=False)])
        trainer.fit(TinyAttention(), DataLoader(_data(4), batch_size=2))


def _flat_after_step(method: str, scaled: bool) -> torch.Tensor:
    from lightning.pytorch.plugins.precision import MixedPrecision

    model = TinyText(OptimizerConfig(name="sgd", lr=1.0), dtype=torch.float32)
    cfg = TrainerConfig(max_steps=1, accumulate_grad_batches=2, accelerator="cpu",
                        limit_val_batches=0)
    kw = {}
    if scaled:                 # Lightning only scales on CUDA; force a GradScaler on CPU (S=1024)
        cfg.precision = None
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        kw["plugins"] = [MixedPrecision("16-mixed", "cpu", scaler=scaler)]
    eps = 2.0 if method == "gp" else 0.5   # gp: an effect well above fp16 noise at k = 2
    adv = AdversarialConfig(method=method, epsilon=eps, embedding="encoder.tok")
    build_trainer(cfg, adv, **kw).fit(model, DataLoader(_data(4), batch_size=2))
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("method", ["fgm", "gp"])
def test_amp_loss_scaling_is_undone(method: str) -> None:
    """With a GradScaler (S=1024) the update matches fp32 up to fp16 noise: g*k/S is right."""
    fp32, scaled = _flat_after_step(method, False), _flat_after_step(method, True)
    plain = _flat_after_step("none", False)
    assert (fp32 - scaled).abs().max() < 1e-3
    assert (fp32 - plain).abs().max() > 1e-2            # the trick's effect is far above the noise


def _scaled_trainer(adv: AdversarialConfig, k: int, steps: int, init_scale: float):
    from lightning.pytorch.plugins.precision import MixedPrecision

    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    cfg = TrainerConfig(max_steps=steps, accumulate_grad_batches=k, accelerator="cpu",
                        limit_val_batches=0)
    cfg.precision = None
    return build_trainer(cfg, adv, plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)]), \
        scaler


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("mode", ["su", "sum"])
def test_fgm_overflow_reaches_the_grad_scaler(mode: str, k: int) -> None:
    """init_scale 2**24 overflows fp16: the step is skipped, the scale backs off, training goes on
    (su used to drop the inf clean grads: 'No inf checks were recorded for this optimizer')."""
    adv = AdversarialConfig(method="fgm", epsilon=0.5, mode=mode, embedding="encoder.tok")
    plain_model = TinyText(OptimizerConfig(name="sgd", lr=1.0), dtype=torch.float32)
    plain, plain_scaler = _scaled_trainer(AdversarialConfig(method="none"), k, 1, 2.0 ** 24)
    before = [p.detach().clone() for p in plain_model.parameters()]
    plain.fit(plain_model, DataLoader(_data(8), batch_size=2))
    assert plain_scaler.get_scale() < 2.0 ** 24          # the control overflows too
    assert all(torch.equal(a, b) for a, b in zip(before, plain_model.parameters()))

    model = TinyText(OptimizerConfig(name="sgd", lr=1.0), dtype=torch.float32)
    initial = [p.detach().clone() for p in model.parameters()]
    trainer, scaler = _scaled_trainer(adv, k, 1, 2.0 ** 24)
    trainer.fit(model, DataLoader(_data(8), batch_size=2))
    assert scaler.get_scale() < 2.0 ** 24                # backed off
    assert all(torch.equal(a, b) for a, b in zip(initial, model.parameters()))   # skipped

    model = TinyText(OptimizerConfig(name="sgd", lr=1.0), dtype=torch.float32)
    trainer, scaler = _scaled_trainer(adv, k, 40, 2.0 ** 24)   # backs off until steps go through
    trainer.fit(model, DataLoader(_data(8 * 40), batch_size=2))
    assert trainer.global_step == 40
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not torch.equal(model.head.weight, initial[-2])     # real updates happened
    assert scaler.get_scale() < 2.0 ** 20                # settled far below the init scale


class SometimesNoEmbedding(TinyText):
    """A batch whose first label is 0 never touches the embedding (a head-only loss)."""

    def compute_loss(self, batch):
        x, y = batch
        if int(y[0]) == 0:
            feats = torch.ones(len(x), D, dtype=self.head.weight.dtype)
            return nn.functional.cross_entropy(self.head(feats), y), {}
        return super().compute_loss(batch)


@pytest.mark.parametrize("mode", ["su", "sum"])
def test_fgm_keeps_clean_grads_of_a_micro_batch_without_embedding_gradient(mode: str) -> None:
    x = torch.tensor([[1, 2, 3, 4, 5], [2, 3, 4, 5, 6]])
    y = torch.tensor([0, 1])                                   # y[0] == 0: no embedding use
    model = TinyText.__new__(SometimesNoEmbedding)
    TinyText.__init__(model)
    initial = copy.deepcopy(model)
    cfg = TrainerConfig(max_steps=1, accelerator="cpu", limit_val_batches=0)
    adv = AdversarialConfig(method="fgm", epsilon=0.7, mode=mode, embedding="encoder.tok")
    build_trainer(cfg, adv).fit(model, DataLoader(TensorDataset(x, y), batch_size=2))
    # Reference: the plain SGD(lr=1) step on the clean loss (FGM has no direction to use).
    loss, _ = initial.compute_loss((x, y))
    grads = torch.autograd.grad(loss, list(initial.head.parameters()))
    expected = [p.detach() - g for p, g in zip(initial.head.parameters(), grads)]
    _assert_params(model.head, expected)
    assert not torch.equal(model.head.weight, initial.head.weight)


def test_epsilon_defaults_to_sus_value_per_method() -> None:
    """Su: FGM epsilon 0.5 in his IFLYTEK config; the gradient penalty epsilon 1 (techniques §6).
    A single shared default of 0.5 gave the penalty half its weight when a conf switched to gp."""
    from kexue.config import build_config

    assert AdversarialConfig(method="gp").epsilon == 1.0
    assert AdversarialConfig(method="fgm").epsilon == 0.5
    assert AdversarialConfig(method="gp", epsilon=0.25).epsilon == 0.25
    import yaml

    root = Path(__file__).resolve().parents[2] / "conf" / "base"
    for conf in ("title_generation", "entity_linking"):
        text = (root / f"parameters_{conf}.yml").read_text(encoding="utf-8")
        params = yaml.safe_load(text)[conf]["adversarial"]
        cfg = build_config(AdversarialConfig, {**params, "method": "gp"}, where=conf)
        assert cfg.epsilon == 1.0, conf
