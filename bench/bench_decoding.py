"""Decoding time per example vs maximum title length: cached (incremental) vs full-prefix.

Greedy and beam search (k = 3) of the L2R baseline at max length 16 / 32 / 64, each with the
incremental path (``cache=True``, the pipeline's default: cached LSTM states and source keys, one
token fed per step) and the full-prefix reference (``cache=False``: re-runs the decoder over the
whole prefix every step), in the same process on the same random-init model and batch. The end
ids are suppressed so every search runs exactly ``max_len`` steps. Runs are interleaved (every
configuration once per round, several rounds), each measurement averages ``256 // max_len``
decodes (all span about the same time) and each ratio is the median of per-round ratios, so the
ratios hold on a busy machine. Target (issue 14): per-token cost flat, i.e. the 64-vs-16 time
ratio of the cached path <= 4.5 (4x the tokens).

Usage: ``.venv/bin/python bench/bench_decoding.py [--quick] [--threads 1]``
Writes ``bench/results/decoding.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from _machine import machine_info  # bench/ is on sys.path as the script's folder
from _models import make_seq2seq

from kexue.models.title_gen import beam
from kexue.models.title_gen.model import Seq2Seq

LENGTHS = (16, 32, 64)


def run_once(model: Seq2Seq, enc: dict, method: str, max_len: int, cache: bool) -> float:
    """Seconds per decode of the whole batch, averaged over ``256 // max_len`` back-to-back
    decodes (every measurement spans about the same time, so scheduler noise hits all alike)."""
    reps = max(1, 256 // max_len)
    t0 = time.perf_counter()
    for _ in range(reps):
        if method == "greedy":
            beam.greedy_decode(model, enc, "l2r", max_len, cache=cache)
        else:
            beam.beam_search(model, enc, "l2r", 3, max_len, cache=cache)
    return (time.perf_counter() - t0) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller batch, fewer rounds")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = default)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "decoding.json"))
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    batch, src_len, rounds = (8, 80, 2) if args.quick else (16, 120, 9)
    vocab = 300
    model = make_seq2seq(False, vocab, torch.device("cpu"))  # the L2R baseline
    x = torch.randint(4, vocab, (batch, src_len), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        enc = model.encode(x)
    configs = [(m, L, c) for m in ("greedy", "beam3") for L in LENGTHS for c in (True, False)]
    for cfg in configs:  # warm-up
        run_once(model, enc, *cfg)
    times: dict[tuple, list[float]] = {cfg: [] for cfg in configs}
    for _ in range(rounds):
        for cfg in configs:
            times[cfg].append(run_once(model, enc, *cfg))
    med = {cfg: statistics.median(v) for cfg, v in times.items()}

    def ratio(m: str, c: bool, L: int) -> float:
        """Median over rounds of the per-round ratio time(L) / time(16) (same round)."""
        return statistics.median(a / b for a, b in zip(times[(m, L, c)], times[(m, 16, c)]))

    rows = []
    for m in ("greedy", "beam3"):
        for c in (True, False):
            rows.append({"method": m, "path": "cached" if c else "full_prefix",
                         "sec_per_example": {str(L): med[(m, L, c)] / batch for L in LENGTHS},
                         "ratio_64_vs_16": ratio(m, c, 64), "ratio_32_vs_16": ratio(m, c, 32)})
        rows.append({"method": m, "path": "speedup_cached_vs_full_prefix",
                     "ratio": {str(L): statistics.median(
                         f / k for f, k in zip(times[(m, L, False)], times[(m, L, True)]))
                         for L in LENGTHS}})
    print(f"batch={batch} src_len={src_len} rounds={rounds} threads={torch.get_num_threads()}")
    for r in rows:
        print(r)
    cached = {r["method"]: r["ratio_64_vs_16"] for r in rows if r["path"] == "cached"}
    result = {"benchmark": "decoding", "quick": args.quick, "batch": batch, "src_len": src_len,
              "rounds": rounds,
              "statistic": "per-round ratios (interleaved rounds, each measurement 256 // L "
                           "decodes), median over rounds",
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              **machine_info(),
              "model": "Seq2SeqConfig defaults (emb 64, LSTM 64), vocab 300, end ids suppressed",
              "target": "cached ratio_64_vs_16 <= 4.5 (per-token cost flat)",
              "target_met": all(v <= 4.5 for v in cached.values()), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
