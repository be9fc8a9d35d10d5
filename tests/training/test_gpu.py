"""CUDA checks (skipped without a GPU): the same tricks run on the device with bf16 autocast."""

import pytest
import torch

from kexue.config import build_config
from kexue.training.config import AdversarialConfig, EMAConfig, TrainerConfig
from kexue.training.trainer import build_trainer
from tests.training.test_trainer import Classifier, _loader


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["fgm", "gp"])
def test_tricks_train_on_cuda_with_bf16(method: str) -> None:
    cfg = build_config(TrainerConfig, {"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed",
                                       "accumulate_grad_batches": 2, "gradient_clip_val": 1.0})
    model = Classifier()
    emb_before = model.embedding.weight.detach().clone()
    trainer = build_trainer(cfg, AdversarialConfig(method=method), EMAConfig(decay=0.9), max_epochs=2)
    trainer.fit(model, _loader(), _loader())
    assert trainer.global_step == 2
    assert next(model.parameters()).device.type == "cuda"
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not torch.equal(emb_before, model.embedding.weight.detach().cpu())
