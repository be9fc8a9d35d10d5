"""Decoding throughput: bidirectional beam search vs L2R beam search at k = 1, 3, 5.

Both searches run on random-init models of the same size (the CPU default sizes of
``conf/base/parameters_title_generation.yml``: the baseline for L2R, the bidirectional model for
bidi), in the same process, on the same batch of random sources. The end ids are suppressed so
every search runs exactly ``--steps`` decoding steps: the comparison is per step, not affected by
when a random model happens to stop. Both searches recompute the decoder LSTMs over the prefix
every step (no incremental state cache); the bidirectional search scores all k*k pairs in one
forward per step (LSTM states and source attention once per hypothesis, only the cross-direction
attention and the classifier per pair), so its cost grows faster than the L2R beam's with k.

Usage: ``.venv/bin/python bench/bench_bidirectional_beam.py [--quick] [--threads 1]``
Writes ``bench/results/bidirectional_beam.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from kexue.models.title_gen import beam
from kexue.models.title_gen.config import Seq2SeqConfig
from kexue.models.title_gen.model import Seq2Seq


def make_model(cross: bool, vocab: int, device: torch.device) -> Seq2Seq:
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(vocab_size=vocab, cross_attention=cross)).to(device).eval()
    with torch.no_grad():
        model.classifier.bias[[2, 3]] = -30.0  # never emit an end id: fixed number of steps
    return model


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller batch, fewer steps")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bidirectional_beam.json"))
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch, src_len, steps, repeats = (8, 80, 12, 1) if args.quick else (16, 120, 20, 4)
    vocab = 300
    x = torch.randint(4, vocab, (batch, src_len), generator=torch.Generator().manual_seed(1)).to(device)
    base, bidi = make_model(False, vocab, device), make_model(True, vocab, device)
    enc_b, enc_bi = base.encode(x), bidi.encode(x)
    rows = []
    for k in (1, 3, 5):
        t_l2r = timed(lambda: beam.beam_search(base, enc_b, "l2r", k, steps), repeats)
        t_bidi = timed(lambda: beam.bidirectional_beam_search(bidi, enc_bi, k, steps), repeats)
        rows.append({"k": k, "l2r_beam_ex_per_s": batch / t_l2r, "bidi_beam_ex_per_s": batch / t_bidi,
                     "bidi_time_ratio_vs_l2r": t_bidi / t_l2r})
    print(f"batch={batch} src_len={src_len} steps={steps} device={device} "
          f"threads={torch.get_num_threads()}")
    print(f"{'k':>3} {'L2R beam ex/s':>14} {'bidi beam ex/s':>15} {'bidi/L2R time':>14}")
    for r in rows:
        print(f"{r['k']:>3} {r['l2r_beam_ex_per_s']:>14.2f} {r['bidi_beam_ex_per_s']:>15.2f} "
              f"{r['bidi_time_ratio_vs_l2r']:>14.2f}")
    result = {"benchmark": "bidirectional_beam", "quick": args.quick, "batch": batch,
              "src_len": src_len, "steps": steps, "device": str(device),
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "machine": platform.machine(), "model": "Seq2SeqConfig defaults (emb 64, LSTM 64)",
              "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
