"""Benchmark: CCKS2019 ingestion at the real size (~400k entities / ~367 MB kb_data, 90k texts).

Generates a kb_data / train.json / develop.json of the real size and shape into a temporary
folder (the embedded-default generator at scale, with longer 摘要 to match the real ~920 bytes
per kb line), then runs, each in a FRESH subprocess so that peak RSS (``ru_maxrss``) is clean:

* ``ingest``: the ``ccks_ingest`` node functions (streaming reader + chunked Arrow columns +
  pandera validation) and the parquet writes;
* ``naive``: the baseline most scripts use: ``json.loads`` every line into a list of dicts, a
  ``pandas.DataFrame`` of it, then the same el.py description/alias preprocessing.

Usage::

    .venv/bin/python bench/bench_ccks_ingest.py           # full size (a few minutes on 2 cores)
    .venv/bin/python bench/bench_ccks_ingest.py --quick   # 10x smaller
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "ccks_ingest.json"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _common_imports() -> float:
    """Import what either child needs (kexue.io pulls in torch), so both start from the same
    RSS; return that RSS in MB (reported as ``import_rss_mb``)."""
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    import kexue.io  # noqa: F401
    import kexue.pipelines.ccks_ingest.nodes  # noqa: F401

    return _peak_mb()


def generate(folder: Path, n_entities: int, n_texts: int, n_filler: int) -> dict[str, float]:
    from kexue.data.ccks.generate import (
        default_develop_lines,
        default_kb_lines,
        default_train_lines,
    )
    from kexue.data.ccks.world import build_world

    t0 = time.perf_counter()
    build_world(n_entities, 0, n_filler)  # train/develop reuse this cached world
    with (folder / "kb_data").open("w", encoding="utf-8") as f:
        for line in default_kb_lines(n_entities, 0, n_filler):
            f.write(line + "\n")
    build_world.cache_clear()
    with (folder / "train.json").open("w", encoding="utf-8") as f:
        for line in default_train_lines(n_texts, n_entities, 0):
            f.write(line + "\n")
    with (folder / "develop.json").open("w", encoding="utf-8") as f:
        for line in default_develop_lines(n_texts // 9, n_entities, 0):
            f.write(line + "\n")
    build_world.cache_clear()
    size = (folder / "kb_data").stat().st_size
    return {"generate_s": time.perf_counter() - t0, "kb_mb": size / 2**20,
            "kb_bytes_per_line": size / n_entities}


def child_ingest(folder: Path) -> dict[str, float]:
    import_mb = _common_imports()
    from kexue.io import TextLinesDataset
    from kexue.pipelines.ccks_ingest import nodes

    t0 = time.perf_counter()
    src = {n: TextLinesDataset(filepath=str(folder / n)).load()
           for n in ("kb_data", "train.json", "develop.json")}
    params: dict = {}
    sources = nodes.check_sources(src["kb_data"], src["train.json"], src["develop.json"])
    ent, ali, ids, kb_rej, kb_st = nodes.ingest_kb(src["kb_data"], sources, params)
    t_kb = time.perf_counter() - t0
    texts, ment, tr_rej, tr_st = nodes.ingest_train(src["train.json"], ids, sources, params)
    pred, dv_rej, dv_st = nodes.ingest_develop(src["develop.json"], sources)
    rejects, report = nodes.report_ccks_ingest(sources, kb_st, tr_st, dv_st, kb_rej, tr_rej,
                                               dv_rej, params)
    t_parse = time.perf_counter() - t0
    out = folder / "out"
    out.mkdir(exist_ok=True)
    for name, df in {"ccks_entities": ent, "ccks_aliases": ali, "ccks_texts": texts,
                     "ccks_mentions": ment, "ccks_predict_texts": pred,
                     "ccks_rejects": rejects}.items():
        df.to_parquet(out / f"{name}.parquet")
    return {"kb_s": t_kb, "parse_s": t_parse, "total_s": time.perf_counter() - t0,
            "peak_rss_mb": _peak_mb(), "import_rss_mb": import_mb, "entities": len(ent), "aliases": len(ali),
            "texts": len(texts), "mentions": len(ment), "rejected": report["totals"]["rejected"]}


def child_naive(folder: Path) -> dict[str, float]:
    import_mb = _common_imports()
    import pandas as pd

    from kexue.data.ccks.kb import el_preprocess, strip_title_marks

    t0 = time.perf_counter()
    with (folder / "kb_data").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    df = pd.DataFrame(rows)
    pre = [el_preprocess(r["subject"], r["alias"], [(d["predicate"], d["object"])
                                                    for d in r["data"]]) for r in rows]
    df["description"] = [p[1] for p in pre]
    df["short_objects"] = [p[2] for p in pre]
    df["data_json"] = [json.dumps(r["data"], ensure_ascii=False) for r in rows]
    df["types"] = ["|".join(r["type"]) for r in rows]
    kb2id: dict[str, list[str]] = {}
    for r, p in zip(rows, pre, strict=True):
        for a in p[0]:
            kb2id.setdefault(strip_title_marks(a), []).append(r["subject_id"])
    t_kb = time.perf_counter() - t0
    with (folder / "train.json").open(encoding="utf-8") as f:
        train = [json.loads(line) for line in f]
    texts = pd.DataFrame(train)
    out = folder / "out_naive"
    out.mkdir(exist_ok=True)
    df[["subject_id", "subject", "types", "description", "short_objects",
        "data_json"]].to_parquet(out / "ccks_entities.parquet")
    texts[["text_id", "text"]].to_parquet(out / "ccks_texts.parquet")
    return {"kb_s": t_kb, "total_s": time.perf_counter() - t0, "peak_rss_mb": _peak_mb(),
            "import_rss_mb": import_mb, "entities": len(df)}


def _run_child(kind: str, folder: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", kind, str(folder)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10x smaller (40k entities, 9k texts)")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--n-filler", type=int, default=3, help="filler sentences per 摘要")
    args = ap.parse_args()
    if args.child:
        kind, folder = args.child
        res = (child_ingest if kind == "ingest" else child_naive)(Path(folder))
        print(json.dumps(res))
        return
    n_entities, n_texts = (40_000, 9_000) if args.quick else (400_000, 90_000)
    with tempfile.TemporaryDirectory(prefix="bench_ccks_") as tmp:
        folder = Path(tmp)
        gen = generate(folder, n_entities, n_texts, args.n_filler)
        ingest = _run_child("ingest", folder)
        naive = _run_child("naive", folder)
    result = {
        "size": "quick" if args.quick else "full", "n_entities": n_entities, "n_texts": n_texts,
        "cpu_count": os.cpu_count(), **{k: round(v, 2) for k, v in gen.items()},
        "ingest": {k: round(v, 2) if isinstance(v, float) else v for k, v in ingest.items()},
        "naive": {k: round(v, 2) if isinstance(v, float) else v for k, v in naive.items()},
        "ratio_time_kb_naive_over_ingest": round(naive["kb_s"] / ingest["kb_s"], 3),
        "ratio_peak_rss_naive_over_ingest": round(naive["peak_rss_mb"] / ingest["peak_rss_mb"], 3),
        "ratio_data_rss_naive_over_ingest": round(
            (naive["peak_rss_mb"] - naive["import_rss_mb"])
            / (ingest["peak_rss_mb"] - ingest["import_rss_mb"]), 3),
    }
    print(f"kb_data: {n_entities} entities, {gen['kb_mb']:.0f} MB "
          f"({gen['kb_bytes_per_line']:.0f} B/line); train {n_texts} texts")
    print(f"{'run':<8}{'kb s':>9}{'total s':>10}{'peak RSS MB':>13}{'after imports':>15}")
    for name, r in (("ingest", ingest), ("naive", naive)):
        print(f"{name:<8}{r['kb_s']:>9.1f}{r['total_s']:>10.1f}{r['peak_rss_mb']:>13.0f}"
              f"{r['import_rss_mb']:>15.0f}")
    print(f"ratios naive/ingest: time(kb) {result['ratio_time_kb_naive_over_ingest']:.2f}, "
          f"peak RSS {result['ratio_peak_rss_naive_over_ingest']:.2f}, "
          f"RSS above imports {result['ratio_data_rss_naive_over_ingest']:.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not args.quick or not RESULTS.exists():
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
