"""Benchmark: optimizer-step time and optimizer-state memory of kexue AdaFactor vs torch optimizers.

Parameter set: the weights of a Transformer encoder stack (token embedding, per layer a fused QKV
projection, output projection, 2-layer FFN, two LayerNorms, biases). Full size: 6 layers,
d_model=512, d_ff=2048, vocab 16k (~27M params); ``--quick``: 2 layers, d=256, vocab 4k.
Random gradients are written straight into ``.grad`` so only ``optimizer.step()`` is timed:
``--warmup`` steps first, then the median of ``--steps`` timed steps, interleaved round-robin in
one process.

Run: ``.venv/bin/python bench/bench_adafactor.py [--quick]``; prints a table and writes
``bench/results/adafactor.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from kexue.training.adafactor import AdaFactor  # noqa: E402


def transformer_params(
    layers: int, d: int, d_ff: int, vocab: int, device: str
) -> list[nn.Parameter]:
    """Parameters shaped like a pre-LN Transformer encoder (no modules, just tensors)."""
    shapes: list[tuple[int, ...]] = [(vocab, d)]
    for _ in range(layers):
        shapes += [(3 * d, d), (3 * d,), (d, d), (d,),          # attention: fused QKV, output
                   (d_ff, d), (d_ff,), (d, d_ff), (d,),         # FFN
                   (d,), (d,), (d,), (d,)]                      # two LayerNorms (weight, bias)
    shapes += [(d,), (d,)]                                      # final LayerNorm
    gen = torch.Generator().manual_seed(0)
    return [nn.Parameter((torch.randn(s, generator=gen) * 0.02).to(device)) for s in shapes]


def state_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
               if torch.is_tensor(v))


def time_optimizers(makers: dict, params_src, warmup: int, steps: int, device: str) -> dict:
    """Interleaved timing: every round steps each optimizer once, so load spikes on a shared
    machine hit all of them alike; the median over rounds is reported per optimizer."""
    gen = torch.Generator().manual_seed(1)
    grads = [(torch.randn(p.shape, generator=gen) * 1e-2).to(device) for p in params_src]
    opts = {}
    for name, make in makers.items():
        params = [nn.Parameter(p.detach().clone()) for p in params_src]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opts[name] = make(params)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    wall: dict[str, list[float]] = {name: [] for name in opts}
    cpu: dict[str, list[float]] = {name: [] for name in opts}
    for i in range(warmup + steps):
        for name, opt in opts.items():
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            opt.step()
            sync()
            if i >= warmup:
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    return {name: {"median_ms": 1e3 * statistics.median(wall[name]),
                   "min_ms": 1e3 * min(wall[name]),
                   "cpu_median_ms": 1e3 * statistics.median(cpu[name]),
                   "state_bytes": state_bytes(opts[name])} for name in opts}


OPTIMIZERS = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3),
    "adam_foreach": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True),
    "torch_adafactor_foreach": lambda ps: torch.optim.Adafactor(ps, lr=1e-3, foreach=True),
    "kexue_adafactor": lambda ps: AdaFactor(ps, lr=1e-3),
    "kexue_adafactor_beta1": lambda ps: AdaFactor(ps, lr=1e-3, beta1=0.9),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 layers, d=256 (seconds)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 8, quick 20)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: multi-thread timings on a shared, "
                         "loaded machine measure OpenMP spin-waiting; 0 keeps the torch default)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "adafactor.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    size = (dict(layers=2, d=256, d_ff=1024, vocab=4000) if args.quick
            else dict(layers=6, d=512, d_ff=2048, vocab=16000))
    steps = args.steps or (20 if args.quick else 8)
    params = transformer_params(device=args.device, **size)
    n_params = sum(p.numel() for p in params)
    param_bytes = sum(p.numel() * p.element_size() for p in params)

    results = time_optimizers(OPTIMIZERS, params, args.warmup, steps, args.device)
    base, taf = results["adam"], results["torch_adafactor_foreach"]
    for r in results.values():
        r["time_vs_adam"] = r["median_ms"] / base["median_ms"]
        r["time_vs_torch_adafactor"] = r["median_ms"] / taf["median_ms"]
        r["cpu_time_vs_adam"] = r["cpu_median_ms"] / base["cpu_median_ms"]
        r["cpu_time_vs_torch_adafactor"] = r["cpu_median_ms"] / taf["cpu_median_ms"]
        r["state_vs_adam"] = r["state_bytes"] / base["state_bytes"]
        r["state_vs_params"] = r["state_bytes"] / param_bytes

    print(f"{n_params / 1e6:.1f}M params in {len(params)} tensors ({size}), device={args.device}, "
          f"threads={torch.get_num_threads()}, median of {steps} interleaved steps after "
          f"{args.warmup} warm-up")
    print("(x Adam / x tAF: ratio to torch.optim.Adam / torch.optim.Adafactor(foreach=True);\n"
          " CPU ms = process CPU time, robust to a loaded machine; state = optimizer-state bytes)")
    print(f"{'optimizer':24s} {'wall ms':>9s} {'x Adam':>7s} {'x tAF':>6s} {'CPU ms':>9s} "
          f"{'x Adam':>7s} {'x tAF':>6s} {'state MiB':>10s} {'x Adam':>7s} {'/params':>8s}")
    for name, r in results.items():
        print(f"{name:24s} {r['median_ms']:9.1f} {r['time_vs_adam']:7.2f} "
              f"{r['time_vs_torch_adafactor']:6.2f} {r['cpu_median_ms']:9.1f} "
              f"{r['cpu_time_vs_adam']:7.2f} {r['cpu_time_vs_torch_adafactor']:6.2f} "
              f"{r['state_bytes'] / 2**20:10.2f} {r['state_vs_adam']:7.3f} "
              f"{r['state_vs_params']:8.3f}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "adafactor", "quick": args.quick, "size": size, "n_params": n_params,
        "n_tensors": len(params), "device": args.device, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
        "warmup": args.warmup, "steps": steps, "baseline": "adam", "results": results,
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
