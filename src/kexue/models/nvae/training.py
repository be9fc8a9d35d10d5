"""Fit NVAE and the baseline VAE with ``build_trainer``; score them on a test set (no Kedro).

Images arrive as ``uint8 (N, H, W, C)`` (``image_ingest``'s layout) and are scaled to [0, 1];
training batches are binarised dynamically by the module, the test set once with a fixed seed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import lightning as L
import numpy as np
import torch

from kexue.models.nvae.evaluation import bits_per_dim, iw_log_likelihood, reestimate_bn
from kexue.training.config import TrainerConfig
from kexue.training.fit import fit_tensors


def to_unit(images: np.ndarray) -> torch.Tensor:
    """``uint8 (N, H, W, C)`` -> ``float32 (N, C, H, W)`` in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)


def binarise(x: torch.Tensor, seed: int) -> torch.Tensor:
    """A fixed Bernoulli draw of ``x`` (the test set of dynamically binarised MNIST)."""
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))


def fit(module: L.LightningModule, images: np.ndarray, batch_size: int,
        trainer_cfg: TrainerConfig, seed: int, checkpoints: Any = None
        ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train ``module`` (an NVAEModule / VAEModule) on ``images``; model on CPU + history."""
    L.seed_everything(seed, workers=True, verbose=False)
    trainer, rows, seconds = fit_tensors(module, to_unit(images), batch_size, trainer_cfg, seed,
                                         checkpoints, drop_last=True)
    params = sum(p.numel() for p in module.model.parameters() if p.requires_grad)
    return module.model.cpu().eval(), {"epochs": rows, "steps": int(trainer.global_step),
                                       "train_seconds": seconds, "parameters": params}


@torch.no_grad()
def score(model: torch.nn.Module, x: torch.Tensor, k: int, batch_size: int, chunk: int,
          seed: int) -> dict[str, Any]:
    """ELBO, IW bound with ``k`` samples (nats per image, NLL = -bound), bits/dim, and the mean
    KL of every latent group (nats; near 0 = a collapsed group)."""
    torch.manual_seed(seed)
    model.eval()
    dims = int(np.prod(x.shape[1:]))
    elbos, iws, kls = [], [], []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        out = model(xb)
        kl = torch.stack(out.kl_per_group)                                   # (G, B)
        elbos.append(model.log_likelihood(out.params, xb) - kl.sum(0))
        kls.append(kl)
        iws.append(iw_log_likelihood(model, xb, k, chunk=chunk))
    e, w, g = torch.cat(elbos), torch.cat(iws), torch.cat(kls, dim=1)
    nll = float(-w.mean())
    return {"elbo_nats": float(e.mean()), "iw_nll_nats": nll, "iw_k": k,
            "iw_nll_se": float(w.std() / math.sqrt(len(w))),
            "bits_per_dim": float(bits_per_dim(nll, dims)),
            "kl_per_group": [float(v) for v in g.mean(1)], "n_test": len(x)}


@torch.no_grad()
def samples_after_bn(model: torch.nn.Module, n: int, temperature: float, n_batches: int,
                     batch_size: int, seed: int) -> np.ndarray:
    """Samples at ``temperature`` from a copy whose BN statistics were re-estimated at that
    temperature (the trained model is untouched); ``uint8 (n, H, W, C)``."""
    m = copy.deepcopy(model)
    torch.manual_seed(seed)
    reestimate_bn(m, n_batches=n_batches, batch_size=batch_size, temperature=temperature)
    m.eval()
    torch.manual_seed(seed + 1)
    x = m.sample(n, temperature=temperature).clamp(0, 1)                   # (n, C, H, W)
    return (x * 255).round().byte().permute(0, 2, 3, 1).numpy()


def bundle(model: torch.nn.Module, cfg: Any, history: dict[str, Any], kind: str) -> dict:
    """Weights-only bundle for ``kexue.io.TorchDataset``."""
    return {"kind": kind, "config": dataclasses.asdict(cfg), "state_dict": model.state_dict(),
            "history": history}
