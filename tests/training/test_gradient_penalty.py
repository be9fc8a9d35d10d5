"""Gradient penalty through a nonlinear model vs an independent ``torch.func`` reference.

The reference differentiates Su's objective ``CE + 0.5*eps*||dCE/de||^2`` with ``torch.func.grad``
twice (functorch transforms, no ``autograd.grad`` / hooks / Lightning), on the concatenated big
batch. Both code paths of :class:`GradientPenalty` must give it: the one-backward path (the penalty
is a KexueModule objective term) and the fallback (a separate penalty backward, for modules whose
``training_step`` does not add objective terms). The one-backward path must really run one
backward per micro-batch.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from kexue.training.config import AdversarialConfig, OptimizerConfig, TrainerConfig
from kexue.training.module import KexueModule
from kexue.training.trainer import build_trainer

V, D, H, C, LEN, EPS = 9, 4, 5, 3, 6, 0.8


class TanhText(KexueModule):
    """Embedding -> tanh(Linear) per position -> mean -> Linear; CE (float64)."""

    def __init__(self) -> None:
        super().__init__(OptimizerConfig(name="sgd", lr=1.0))
        torch.manual_seed(3)
        self.embedding = nn.Embedding(V, D)
        self.hidden = nn.Linear(D, H)
        self.head = nn.Linear(H, C)
        self.double()

    def compute_loss(self, batch):
        x, y = batch
        h = torch.tanh(self.hidden(self.embedding(x)))           # (B, L, H)
        return F.cross_entropy(self.head(h.mean(1)), y), {}


class SeparateBackward(TanhText):
    """Its training_step ignores objective_terms: the callback must fall back."""

    def training_step(self, batch, batch_idx):
        return self.model_step(batch, "train")


def _data(n: int = 8) -> TensorDataset:
    g = torch.Generator().manual_seed(5)
    return TensorDataset(torch.randint(0, V, (n, LEN), generator=g),
                         torch.randint(0, C, (n,), generator=g))


def _ce_from_e(p: dict[str, torch.Tensor], e: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    h = torch.tanh(e @ p["hidden.weight"].T + p["hidden.bias"])
    return F.cross_entropy(h.mean(1) @ p["head.weight"].T + p["head.bias"], y)


def _objective(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    e = p["embedding.weight"][x]                                  # (B, L, D)
    ge = torch.func.grad(_ce_from_e, argnums=1)(p, e, y)          # dCE/de
    return _ce_from_e(p, e, y) + 0.5 * EPS * (ge ** 2).sum()


def _reference_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    p = {k: v.detach().clone() for k, v in model.named_parameters()}
    grads = torch.func.grad(_objective)(p, x, y)
    return {k: p[k] - grads[k] for k in p}                       # SGD, lr = 1


class BackwardCount:
    """Counts torch.autograd.backward calls (Lightning's and the fallback's) during a fit."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = torch.autograd.backward

        def counting(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(torch.autograd, "backward", counting)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("cls", [TanhText, SeparateBackward], ids=["one-backward", "fallback"])
def test_gradient_penalty_matches_torch_func_double_grad(cls, k: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    model = cls()
    initial = copy.deepcopy(model)
    data = _data()
    count = BackwardCount(monkeypatch)
    cfg = TrainerConfig(max_steps=1, accumulate_grad_batches=k, accelerator="cpu",
                        limit_val_batches=0)
    adv = AdversarialConfig(method="gp", epsilon=EPS, embedding="embedding")
    build_trainer(cfg, adv).fit(model, DataLoader(data, batch_size=len(data) // k))
    expected = _reference_step(initial, *data.tensors)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=0, atol=1e-12)
    # one backward per micro-batch; the fallback back-propagates the penalty separately
    assert count.calls == (k if cls is TanhText else 2 * k)
    plain = copy.deepcopy(initial)
    build_trainer(cfg).fit(plain, DataLoader(data, batch_size=len(data) // k))
    assert not torch.allclose(plain.hidden.weight, model.hidden.weight, atol=1e-6)


def test_objective_term_is_removed_after_the_fit() -> None:
    model = TanhText()
    cfg = TrainerConfig(max_steps=1, accelerator="cpu", limit_val_batches=0)
    build_trainer(cfg, AdversarialConfig(method="gp", epsilon=EPS)).fit(
        model, DataLoader(_data(), batch_size=4))
    assert model.objective_terms == []
