"""Fit the VQ-VAE and its prior with ``build_trainer``; encode, score and sample (no Kedro here).

Images arrive as ``uint8 (N, H, W, C)`` (``image_ingest``'s layout) and are scaled to
``[-0.5, 0.5]`` (the Keras anchor's scaling), channels first.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import lightning as L
import numpy as np
import torch

from kexue.models.vqvae.config import PriorConfig, VQVAEConfig
from kexue.models.vqvae.model import VQVAE
from kexue.models.vqvae.module import PriorModule, VQVAEModule
from kexue.models.vqvae.prior import build_prior, nll_per_code, sample
from kexue.models.vqvae.quantizer import perplexity_of
from kexue.training.config import OptimizerConfig, TrainerConfig
from kexue.training.fit import fit_tensors


def to_input(images: np.ndarray) -> torch.Tensor:
    """``uint8 (N, H, W, C)`` -> ``float32 (N, C, H, W)`` in ``[-0.5, 0.5]``."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0).sub(0.5)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`to_input` (clamped): ``(N, C, H, W)`` -> ``uint8 (N, H, W, C)``."""
    return ((x.clamp(-0.5, 0.5) + 0.5) * 255.0).round().byte().permute(0, 2, 3, 1).numpy()


def fit_vqvae(images: np.ndarray, cfg: VQVAEConfig, optim: OptimizerConfig,
              trainer_cfg: TrainerConfig, batch_size: int, seed: int,
              checkpoints: Any = None) -> tuple[VQVAE, dict[str, Any]]:
    """Train the autoencoder on ``images``; returns the model (CPU, eval) and its history."""
    L.seed_everything(seed, workers=True, verbose=False)
    module = VQVAEModule(cfg, optim)
    trainer, rows, seconds = fit_tensors(module, to_input(images), batch_size, trainer_cfg,
                                         seed, checkpoints)
    return module.model.cpu().eval(), {"epochs": rows, "steps": int(trainer.global_step),
                                       "train_seconds": seconds,
                                       "images_per_second": len(images) * len(rows) / seconds}


@torch.no_grad()
def encode(model: VQVAE, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Code grids ``int64 (N, h, w)`` of ``images`` (eval mode: the codebook does not move)."""
    model.eval()
    x = to_input(images)
    return torch.cat([model.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
                     ).numpy()


def fit_prior(codes: np.ndarray, cfg: PriorConfig, codebook_size: int, optim: OptimizerConfig,
              trainer_cfg: TrainerConfig, batch_size: int, seed: int,
              checkpoints: Any = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Fit the autoregressive prior on frozen-encoder code grids ``(N, h, w)``."""
    L.seed_everything(seed, workers=True, verbose=False)
    h, w = codes.shape[1:]
    module = PriorModule(cfg, codebook_size, h, w, optim)
    trainer, rows, seconds = fit_tensors(module, torch.from_numpy(codes).long(), batch_size,
                                         trainer_cfg, seed, checkpoints)
    return module.prior.cpu().eval(), {"epochs": rows, "steps": int(trainer.global_step),
                                       "train_seconds": seconds}


@torch.no_grad()
def reconstruction_metrics(model: VQVAE, images: np.ndarray, batch_size: int = 256
                           ) -> tuple[dict[str, float], np.ndarray]:
    """Test-split reconstruction: MSE on the [0, 1] pixel scale, variance-normalised MSE (MSE /
    pixel variance of the split: the NMSE of the Keras / DeepMind examples), PSNR in dB; the
    codebook perplexity and fraction of codes used over the whole split. Returns the metrics
    and the reconstructions (uint8)."""
    model.eval()
    x = to_input(images)
    sq, out, counts = 0.0, [], torch.zeros(model.cfg.codebook_size)
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        res = model(xb)
        sq += float(((res.x_hat.clamp(-0.5, 0.5) - xb) ** 2).sum())
        counts += torch.bincount(res.quant.indices.reshape(-1),
                                 minlength=model.cfg.codebook_size).float()
        out.append(res.x_hat)
    mse = sq / x.numel()
    var = float(x.var())
    return ({"recon_mse": mse, "recon_nmse": mse / var, "pixel_variance": var,
             "psnr_db": 10 * math.log10(1.0 / max(mse, 1e-12)),
             "codebook_perplexity": float(perplexity_of(counts)),
             "codes_used_frac": float((counts > 0).float().mean())},
            to_uint8(torch.cat(out)))


def prior_metrics(prior: torch.nn.Module, codes: np.ndarray, codebook_size: int,
                  n_pixels: int) -> dict[str, float]:
    """NLL of the test codes in nats per code and per image, beside the uniform prior's ln K,
    and the code cost in bits per image pixel (``n_pixels`` = H*W*C; the cost of the discrete
    codes, not a likelihood of the pixels, which the VQ-VAE's decoder does not define)."""
    nll = nll_per_code(prior, torch.from_numpy(codes).long())
    per_image = codes.shape[1] * codes.shape[2]
    return {"prior_nll_nats_per_code": nll, "uniform_nats_per_code": math.log(codebook_size),
            "prior_nll_nats_per_image": nll * per_image,
            "prior_code_bits_per_pixel": nll * per_image / (math.log(2) * n_pixels)}


@torch.no_grad()
def generate(model: VQVAE, prior: torch.nn.Module, n: int, temperature: float,
             seed: int) -> np.ndarray:
    """Prior -> codebook -> decoder: ``n`` sampled images (uint8)."""
    h = w = model.cfg.grid_size
    g = torch.Generator().manual_seed(seed)
    codes = sample(prior, n, h, w, temperature=temperature, generator=g)
    return to_uint8(model.decode_indices(codes))


def bundle(model: torch.nn.Module, cfg: Any, history: dict[str, Any], **extra: Any) -> dict:
    """Weights-only bundle (config, state_dict, history) for ``kexue.io.TorchDataset``."""
    return {"config": dataclasses.asdict(cfg), "state_dict": model.state_dict(),
            "history": history, **extra}


def vqvae_from_bundle(b: dict[str, Any]) -> VQVAE:
    model = VQVAE(VQVAEConfig(**b["config"]))
    model.load_state_dict(b["state_dict"])
    return model.eval()


def prior_from_bundle(b: dict[str, Any]) -> torch.nn.Module:
    prior = build_prior(PriorConfig(**b["config"]), b["codebook_size"], *b["grid"])
    prior.load_state_dict(b["state_dict"])
    return prior.eval()
