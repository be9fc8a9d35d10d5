"""CUDA checks (skipped without a GPU): the same tricks on the device give the CPU's result.

fp32 on CUDA must match fp32 on CPU within 1e-4 (float reassociation and cuDNN/cuBLAS kernels
differ; TF32 is switched off here); bf16 autocast must stay within 1e-2 of fp32 (6e-4 on CPU) -- each could fail.
"""

import pytest
import torch

from kexue.config import build_config
from kexue.training.config import AdversarialConfig, EMAConfig, TrainerConfig
from kexue.training.trainer import build_trainer
from tests.training.test_trainer import Classifier, _loader


def _train(method: str, accelerator: str, precision: str) -> tuple[Classifier, int]:
    torch.manual_seed(0)
    cfg = build_config(TrainerConfig, {"accelerator": accelerator, "devices": 1,
                                       "precision": precision, "accumulate_grad_batches": 2,
                                       "gradient_clip_val": 1.0})
    model = Classifier()
    eps = 20.0 if method == "gp" else 0.5        # gp: an effect well above the tolerances
    trainer = build_trainer(cfg, AdversarialConfig(method=method, epsilon=eps),
                            EMAConfig(decay=0.9), max_epochs=2)
    trainer.fit(model, _loader(), _loader())
    return model.cpu(), trainer.global_step


def _flat(model: Classifier) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten() for p in model.parameters()])


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["none", "fgm", "gp"])
def test_tricks_on_cuda_match_cpu(method: str) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cpu, steps_cpu = _train(method, "cpu", "32-true")
    gpu, steps_gpu = _train(method, "gpu", "32-true")
    assert steps_cpu == steps_gpu == 2
    assert (_flat(cpu) - _flat(gpu)).abs().max() < 1e-4
    bf16, _ = _train(method, "gpu", "bf16-mixed")
    assert all(torch.isfinite(p).all() for p in bf16.parameters())
    assert (_flat(bf16) - _flat(cpu)).abs().max() < 1e-2
    if method != "none":
        plain, _ = _train("none", "cpu", "32-true")
        assert (_flat(plain) - _flat(cpu)).abs().max() > 5e-4   # the effect >> the 1e-4 tolerance
