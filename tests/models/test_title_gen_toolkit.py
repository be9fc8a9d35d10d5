"""AdaFactor + FGM (su) + exact accumulation on the project's own TitleGenModule: one optimizer
step through Lightning equals a hand-written reference (float64, plain autograd + the same
AdaFactor class, whose own maths is checked against a float64 hand implementation elsewhere)."""

from __future__ import annotations

import copy

import torch
from torch.utils.data import DataLoader

from kexue.models.title_gen.batching import Collate
from kexue.models.title_gen.config import Seq2SeqConfig
from kexue.models.title_gen.module import TitleGenModule
from kexue.training import AdaFactor
from kexue.training.config import AdversarialConfig, OptimizerConfig, TrainerConfig
from kexue.training.trainer import build_trainer
from tests.models.test_accumulation_exact import _title_examples

EPS, LR, K, B = 0.5, 1e-2, 3, 2        # 7 examples: windows (2,2,2) and (1)


def _module() -> TitleGenModule:
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(vocab_size=30, emb_dim=8, enc_hidden=6, dec_hidden=8, heads=2,
                        head_dim=4, smln_hidden=6, out_dim=8, dropout=0.0)
    return TitleGenModule(cfg, OptimizerConfig(name="adafactor", lr=LR))


def _reference(module: TitleGenModule, micro: list[dict]) -> list[torch.Tensor]:
    """Per window: J_j = k * sum-loss_j / N_window (per direction, weights 1/2); FGM su on E:
    delta = eps * dJ_j/dE / (||.|| + 1e-8), adversarial grad of J_j(E + delta) / k; AdaFactor."""
    ref = copy.deepcopy(module).double()
    emb = ref.model.embedding.weight
    opt = AdaFactor(ref.parameters(), lr=LR)
    for w in range(0, len(micro), K):
        window = micro[w:w + K]
        totals = {}
        for mb in window:
            for g, c in ref.loss_counts(mb).items():
                totals[g] = totals.get(g, 0.0) + float(c)
        norm = {g: t / K for g, t in totals.items()}
        opt.zero_grad()
        for mb in window:
            clean = ref.loss_terms(mb).mean(norm)
            (g_e,) = torch.autograd.grad(clean, [emb])
            delta = EPS * g_e / (g_e.norm() + 1e-8)
            with torch.no_grad():
                emb.add_(delta)
            (ref.loss_terms(mb).mean(norm) / K).backward()
            with torch.no_grad():
                emb.sub_(delta)
        opt.step()
    return [p.detach() for p in ref.parameters()]


def test_adafactor_fgm_accumulation_equal_the_hand_reference() -> None:
    data = _title_examples()
    items = [data[i] for i in range(len(data))]
    collate = Collate()
    module = _module()
    micro = [collate(items[i:i + B]) for i in range(0, len(items), B)]
    expected = _reference(module, micro)
    cfg = TrainerConfig(max_epochs=1, accumulate_grad_batches=K, accelerator="cpu",
                        precision="64-true", limit_val_batches=0)
    adv = AdversarialConfig(method="fgm", epsilon=EPS, embedding="model.embedding")
    trainer = build_trainer(cfg, adv)
    trainer.fit(module, DataLoader(items, batch_size=B, shuffle=False, collate_fn=collate))
    assert trainer.global_step == 2
    diff = max(float((p.double() - e).abs().max()) for p, e in zip(module.parameters(), expected))
    assert diff <= 1e-9, diff
    # and the options matter: without FGM the weights differ by far more than that
    plain = _module()
    build_trainer(cfg).fit(plain, DataLoader(items, batch_size=B, shuffle=False,
                                             collate_fn=collate))
    gap = max(float((p - q).abs().max()) for p, q in zip(module.parameters(), plain.parameters()))
    assert gap > 1e-4, gap
