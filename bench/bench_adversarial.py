"""Benchmark: training-step time of FGM and gradient penalty relative to a plain step.

Same model (token embedding -> ``nn.TransformerEncoder`` -> mean-pool -> linear, CE loss), same
data, same process: ``build_trainer`` runs with ``adversarial.method`` none / fgm (su) / fgm (sum)
/ gp. Each configuration is fitted ``--rounds`` times round-robin (so load spikes on a shared
machine hit all alike). Per batch (``on_train_batch_start`` -> ``on_train_batch_end``, warm-up
batch dropped) both the wall time and the process CPU time (``time.process_time``, one torch
thread) are recorded; on a loaded shared CPU the CPU-time median is the reliable cost measure,
wall time is printed for reference (on CUDA only wall time is meaningful). Expected: FGM about
2x (one extra forward + backward), GP about 2.3x (the create-graph backward to the embedding
output, then ONE backward of loss + penalty through the double-backward graph). ``previous``
holds the ratios of the result file this run replaced.

Run: ``.venv/bin/python bench/bench_adversarial.py [--quick] [--out FILE]`` (default
``bench/results/adversarial.json``; another machine: ``bench/results/<machine>/adversarial.json``)
-> a table and the result file.
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

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from _machine import machine_info  # noqa: E402  (bench/ is on sys.path as the script's folder)
from _models import TokenEncoder  # noqa: E402

from kexue.training.config import AdversarialConfig, TrainerConfig  # noqa: E402
from kexue.training.trainer import build_trainer  # noqa: E402

SIZES = {
    "full": dict(vocab=4000, d=128, heads=4, d_ff=512, layers=2, seq=64, batch=16, steps=8,
                 rounds=5),
    "quick": dict(vocab=1000, d=64, heads=4, d_ff=256, layers=1, seq=32, batch=16, steps=6,
                  rounds=2),
}
METHODS = {
    "plain": AdversarialConfig(method="none"),
    "fgm-su": AdversarialConfig(method="fgm", epsilon=0.5, mode="su"),
    "fgm-sum": AdversarialConfig(method="fgm", epsilon=0.5, mode="sum"),
    "gp": AdversarialConfig(method="gp", epsilon=1.0),
}


class StepTimer(L.Callback):
    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.t, self.c = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.wall.append(time.perf_counter() - self.t)
        self.cpu.append(time.process_time() - self.c)


def run_once(s: dict, adv: AdversarialConfig,
             data: TensorDataset) -> tuple[list[float], list[float]]:
    torch.manual_seed(0)
    timer = StepTimer()
    cfg = TrainerConfig(max_epochs=1, limit_val_batches=0)
    trainer = build_trainer(cfg, adv, callbacks=[timer], num_sanity_val_steps=0)
    trainer.fit(TokenEncoder(s), DataLoader(data, batch_size=s["batch"]))
    return timer.wall[1:], timer.cpu[1:]                             # drop the warm-up step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller model (well under a minute)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "adversarial.json"),
                    help="result file (another machine: bench/results/<machine>/...)")
    args = ap.parse_args()
    size = "quick" if args.quick else "full"
    s = SIZES[size]
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    n = s["batch"] * s["steps"]
    data = TensorDataset(torch.randint(0, s["vocab"], (n, s["seq"]), generator=g),
                         torch.randint(0, 10, (n,), generator=g))
    wall: dict[str, list[float]] = {m: [] for m in METHODS}
    cpu: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(s["rounds"]):
        for name, adv in METHODS.items():
            w, c = run_once(s, adv, data)
            wall[name] += w
            cpu[name] += c
    mw = {m: statistics.median(t) for m, t in wall.items()}
    mc = {m: statistics.median(t) for m, t in cpu.items()}
    rows = [{"method": m, "median_cpu_s_per_step": mc[m], "cpu_ratio_vs_plain": mc[m] / mc["plain"],
             "median_wall_s_per_step": mw[m], "wall_ratio_vs_plain": mw[m] / mw["plain"],
             "n_steps": len(wall[m])} for m in METHODS]
    print(f"\nAdversarial training step time ({'cuda' if torch.cuda.is_available() else 'cpu'}), "
          f"{size}: {s}")
    print(f"{'method':>8} | {'CPU ms/step':>11} | {'CPU ratio':>9} | {'wall ms/step':>12} | "
          f"{'wall ratio':>10}")
    for r in rows:
        print(f"{r['method']:>8} | {1000 * r['median_cpu_s_per_step']:>11.1f} | "
              f"{r['cpu_ratio_vs_plain']:>9.2f} | {1000 * r['median_wall_s_per_step']:>12.1f} | "
              f"{r['wall_ratio_vs_plain']:>10.2f}")
    out = Path(args.out)
    previous = {}
    if out.exists():                          # the ratios of the result this run replaces
        previous = {r["method"]: {"cpu_ratio_vs_plain": round(r["cpu_ratio_vs_plain"], 3),
                                  "wall_ratio_vs_plain": round(r["wall_ratio_vs_plain"], 3)}
                    for r in json.loads(out.read_text()).get("rows", [])}
    result = {"benchmark": "adversarial", "size": size, "config": s, "baseline": "plain",
              "device": "cuda" if torch.cuda.is_available() else "cpu",
              "python": platform.python_version(), "torch": torch.__version__, **machine_info(),
              "rows": rows,
              "previous": previous}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
