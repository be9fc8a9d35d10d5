"""Benchmark: peak memory and time per update of gradient accumulation (b, k) vs one batch (k*b, 1).

Model: a small Transformer encoder classifier (token embedding, ``nn.TransformerEncoder`` layers,
mean-pool, linear head) trained with ``build_trainer`` (ExactAccumulation on, AdamW). Every
configuration sees the same effective batch ``B = k*b`` per optimizer update.

Memory: on CPU, torch allocations bypass ``tracemalloc``, so each configuration runs in a FRESH
subprocess and reports ``ru_maxrss`` (peak RSS) at train start (model, optimizer, Lightning
loaded) and at the end; the difference ("train peak") is the memory that training itself needed
(activations, gradients, optimizer state), the ratio to the ``(B, 1)`` run is the saving. On CUDA
``torch.cuda.max_memory_allocated`` is used instead. Time: median process CPU time per optimizer
update (one torch thread; on a loaded shared CPU wall time is noise), CUDA: wall time.

Run: ``.venv/bin/python bench/bench_accumulation.py [--quick]``
-> table + ``bench/results/accumulation.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SIZES = {  # vocab, d_model, heads, d_ff, layers, seq_len, effective batch, updates
    "full": dict(vocab=2000, d=128, heads=4, d_ff=512, layers=2, seq=128, batch=32, updates=3),
    "quick": dict(vocab=1000, d=64, heads=4, d_ff=256, layers=2, seq=64, batch=32, updates=2),
}


def worker(size: str, b: int, k: int) -> dict:
    """Train ``updates`` optimizer steps with micro-batch ``b``, accumulation ``k``; measure."""
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from _models import TokenEncoder
    from kexue.training.config import TrainerConfig
    from kexue.training.trainer import build_trainer

    s = SIZES[size]
    cuda = torch.cuda.is_available()
    torch.manual_seed(0)
    torch.set_num_threads(1)

    class Probe(L.Callback):
        def on_train_start(self, trainer, pl_module):
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                self.base = torch.cuda.memory_allocated()
            else:
                self.base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            self.t, self.times = None, []
            self.clock = time.perf_counter if cuda else time.process_time

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if self.t is None:
                self.t = self.clock()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if len(self.times) < trainer.global_step:             # an update finished
                if cuda:
                    torch.cuda.synchronize()
                self.times.append(self.clock() - self.t)
                self.t = None

    n = s["batch"] * s["updates"]
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randint(0, s["vocab"], (n, s["seq"]), generator=g),
                         torch.randint(0, 10, (n,), generator=g))
    probe = Probe()
    cfg = TrainerConfig(max_epochs=1, accumulate_grad_batches=k, limit_val_batches=0)
    trainer = build_trainer(cfg, callbacks=[probe], num_sanity_val_steps=0)
    trainer.fit(TokenEncoder(s), DataLoader(data, batch_size=b))
    if cuda:
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"b": b, "k": k, "updates": trainer.global_step, "base_bytes": probe.base,
            "peak_bytes": peak, "train_peak_bytes": peak - probe.base,
            "s_per_update": statistics.median(probe.times[1:] or probe.times),
            "device": "cuda" if cuda else "cpu"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller model / batch (about 1 min)")
    ap.add_argument("--worker", nargs=3, metavar=("SIZE", "B", "K"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        size, b, k = args.worker[0], int(args.worker[1]), int(args.worker[2])
        print(json.dumps(worker(size, b, k)))
        return

    size = "quick" if args.quick else "full"
    big = SIZES[size]["batch"]
    configs = [(big, 1), (big // 2, 2), (big // 4, 4), (big // 8, 8)]
    rows = []
    for b, k in configs:
        out = subprocess.run([sys.executable, __file__, "--worker", size, str(b), str(k)],
                             capture_output=True, text=True, check=True,
                             env={"KEDRO_DISABLE_TELEMETRY": "1", "PATH": "/usr/bin:/bin",
                                  "PYTHONWARNINGS": "ignore"})
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    ref = rows[0]
    for r in rows:
        r["train_peak_ratio"] = r["train_peak_bytes"] / ref["train_peak_bytes"]
        r["peak_ratio"] = r["peak_bytes"] / ref["peak_bytes"]
        r["time_ratio"] = r["s_per_update"] / ref["s_per_update"]

    mb = 2 ** 20
    print(f"\nGradient accumulation, effective batch {big}, {SIZES[size]} ({rows[0]['device']})")
    print(f"{'b x k':>8} | {'train peak MiB':>14} | {'ratio':>6} | {'process peak MiB':>16} | "
          f"{'ratio':>6} | {'s/update':>8} | {'ratio':>6}  (s/update: CPU time on cpu)")
    for r in rows:
        print(f"{r['b']:>4} x {r['k']:<2}| {r['train_peak_bytes'] / mb:>14.1f} | "
              f"{r['train_peak_ratio']:>6.2f} | {r['peak_bytes'] / mb:>16.1f} | "
              f"{r['peak_ratio']:>6.2f} | {r['s_per_update']:>8.3f} | "
              f"{r['time_ratio']:>6.2f}")
    result = {"benchmark": "accumulation", "size": size, "config": SIZES[size],
              "baseline": f"b={big}, k=1", "python": platform.python_version(),
              "machine": platform.machine(), "rows": rows}
    out_path = ROOT / "bench" / "results" / "accumulation.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {out_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
