"""Candidate generation throughput: Aho-Corasick max-matching vs a plain-Python substring loop.

Both sides run in this process on the same synthetic Chinese alias dictionaries (10k / 100k /
400k aliases; lengths 1-20 chars, mostly 2-4, like the CCKS KB) and the same synthetic texts
(~30 chars, half made of aliases). Two timings per side:

* ``hits``: finding every alias occurrence (automaton ``iter`` vs a loop over all substrings up to
  the longest alias with a dict lookup);
* ``match``: hits + the max-matching DP + filtering (what the pipeline calls per text).

Outputs are checked identical. Prints a table and writes ``bench/results/candidates.json``.

    .venv/bin/python bench/bench_candidates.py            # ~2 min on 2 cores
    .venv/bin/python bench/bench_candidates.py --quick    # ~30 s
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

from kexue.models.entity_linking.candidates import AliasMatcher, lower_keep_length, naive_hits

CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 3500)]  # a common-char-sized alphabet


def make_aliases(n: int, rng: random.Random) -> dict[str, list[str]]:
    lengths = [1, 2, 2, 2, 3, 3, 3, 4, 4, 5, 6, 8, 10, 14, 20]
    out: dict[str, list[str]] = {}
    while len(out) < n:
        alias = "".join(rng.choice(CJK) for _ in range(rng.choice(lengths)))
        out.setdefault(alias, []).append(str(len(out)))
    return out


def make_texts(aliases: list[str], n: int, rng: random.Random) -> list[str]:
    texts = []
    for _ in range(n):
        parts = []
        while sum(map(len, parts)) < 30:
            parts.append(rng.choice(aliases) if rng.random() < 0.5 else
                         "".join(rng.choice(CJK) for _ in range(rng.randint(1, 4))))
        texts.append("".join(parts))
    return texts


def timed(fn, texts: list[str], repeat: int) -> tuple[float, list]:
    best, out = float("inf"), []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = [fn(t) for t in texts]
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer texts / sizes (~30 s)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "candidates.json"))
    args = ap.parse_args()
    sizes = [10_000, 100_000, 400_000]
    n_texts = 1000 if args.quick else 4000
    repeat = 2 if args.quick else 3
    rows = []
    for size in sizes:
        rng = random.Random(size)
        kb = make_aliases(size, rng)
        t0 = time.perf_counter()
        matcher = AliasMatcher(kb)
        build_s = time.perf_counter() - t0
        texts = make_texts(list(kb), n_texts, rng)
        lowered = [lower_keep_length(t) for t in texts]
        keys = matcher.kb2id
        ac_hits, h1 = timed(matcher.hits, lowered, repeat)
        py_hits, h2 = timed(lambda t: naive_hits(t, keys, matcher.max_len), lowered, repeat)
        ac_match, m1 = timed(matcher.match, texts, repeat)
        py_match, m2 = timed(matcher.match_naive, texts, repeat)
        assert h1 == h2 and m1 == m2, "automaton and baseline disagree"
        rows.append({
            "aliases": size, "max_alias_len": matcher.max_len, "texts": n_texts,
            "automaton_build_s": round(build_s, 3),
            "hits_automaton_texts_per_s": round(ac_hits), "hits_python_texts_per_s": round(py_hits),
            "hits_speedup": round(ac_hits / py_hits, 2),
            "match_automaton_texts_per_s": round(ac_match), "match_python_texts_per_s": round(py_match),
            "match_speedup": round(ac_match / py_match, 2),
            "spans_per_text": round(sum(map(len, m1)) / n_texts, 2),
        })
        r = rows[-1]
        print(f"{size:>7} aliases (max len {r['max_alias_len']}): build {build_s:.2f}s | hits "
              f"{r['hits_automaton_texts_per_s']:>7}/s vs {r['hits_python_texts_per_s']:>6}/s "
              f"(x{r['hits_speedup']}) | match {r['match_automaton_texts_per_s']:>6}/s vs "
              f"{r['match_python_texts_per_s']:>6}/s (x{r['match_speedup']})", flush=True)
    print()
    head = ["aliases", "hits AC/s", "hits py/s", "x", "match AC/s", "match py/s", "x"]
    print(" | ".join(f"{h:>10}" for h in head))
    for r in rows:
        vals = [r["aliases"], r["hits_automaton_texts_per_s"], r["hits_python_texts_per_s"],
                r["hits_speedup"], r["match_automaton_texts_per_s"], r["match_python_texts_per_s"],
                r["match_speedup"]]
        print(" | ".join(f"{v:>10}" for v in vals))
    result = {"benchmark": "candidates", "quick": args.quick, "python": platform.python_version(),
              "machine": platform.machine(), "note": "texts/s; ratios are automaton / plain Python "
              "in the same process; timings on a shared 2-core box are noisy, ratios less so",
              "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
