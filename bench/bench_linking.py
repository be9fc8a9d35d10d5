"""Entity-linking inference throughput: encode-once linking vs the per-pair path (issue 14).

Both paths run in this process, one CPU thread (``torch.set_num_threads(1)``, the pipeline's
``data.torch_threads``), on the same trained bundle and the same develop texts, and must give
the same predictions (asserted). What is timed is the linking node's work on the texts
(``predict_submission`` minus loading): ``items`` (lowercase, jieba, max-matching) + NER +
linking, in the node's 1024-text chunks.

* ``today``: ``Linker.ner`` + ``Linker.link_per_pair`` (text BiLSTM and description encoder
  re-run for every (span, candidate) pair) with the entity features as they were computed
  before (a compiled regex per entity, whole-text jieba): the path this replaces;
* ``per_pair``: the same per-pair scoring with today's (exact, faster) entity features, to
  isolate what encoding once brings;
* ``new``: ``Linker.predict`` (each text encoded once, each description once per model).

Each repeat builds a FRESH linker per side (cold per-entity caches, as a pipeline run starts);
the sides take turns on 200-text slices (order alternated), and the ratio is the median of the
per-repeat ratios (robust to a busy 2-core box). ``warm_*`` re-runs the same texts on the same
linkers (every per-entity cache filled): the steady state of a long submission.

Worlds (built in-process from the embedded-default generator, no download):

* ``default``: the catalog's default world (3000 entities, 6000 train / 1000 develop texts) and
  the base (CPU) model sizes;
* ``kb400k``: the same texts' generator on a 400k-entity KB (the real kb_data's size);
* ``gpu_sizes`` (not with ``--quick``): Su's sizes from ``conf/gpu`` (char 128, BiLSTM 64x2,
  descriptions up to 512 chars) on a 3000-entity world with real-length descriptions (30 filler
  sentences per 摘要: ~540 chars, like the real kb_data's long ones), 200 texts.

Floor (``floor_ratio_vs_today``): the texts' items, the NER pass and the matcher network's
forward on every (span, candidate) pair (``score_encoded``: its input is the query BiLSTM over
the pair's own span features, so nothing of it is shared between pairs) must be computed by
every exact path; today's time over their sum is the most any linking path can gain with these
kernels, before anything else (hand features, batching) is spent.

The model is trained briefly (1 epoch on 1024 train texts, 256 at Su's sizes): only its behaviour (spans found,
scores) matters here. Writes ``bench/results/linking.json``.

    .venv/bin/python bench/bench_linking.py            # ~15 min on a busy 2-core box
    .venv/bin/python bench/bench_linking.py --quick    # default world only, ~2 min
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from _machine import machine_info  # bench/ is on sys.path as the script's folder

from kexue.models.entity_linking.features import EntityFeatureCache, object_pattern, segment
from kexue.models.entity_linking.training import load_linker, pruned_matcher
from kexue.pipelines.ccks_ingest.embedded import embedded_tables
from kexue.pipelines.entity_linking.nodes import learn_behaviour, train_linker

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "linking.json"
CHUNK = 1024  # predict_submission's chunk
SLICE = 200  # texts timed in a row per side before switching sides


def base_params(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """``params:entity_linking`` of conf/base, briefly trained, with model overrides."""
    text = (ROOT / "conf/base/parameters_entity_linking.yml").read_text(encoding="utf-8")
    params = yaml.safe_load(text)["entity_linking"]
    params["data"]["max_train_texts"] = 1024
    params["trainer"].update(max_epochs=1, enable_progress_bar=False, accelerator="cpu")
    params["model"].update(overrides or {})
    return params


class TodayFeatureCache(EntityFeatureCache):
    """The entity features as before issue 14: a compiled regex per entity, whole-text jieba."""

    def get(self, subject_id: str) -> tuple[frozenset[str], frozenset[str], Any]:
        hit = self._cache.get(subject_id)
        if hit is None:
            desc = self.descriptions.get(subject_id, "")
            hit = (frozenset(desc), frozenset(segment(desc)),
                   object_pattern(self.objects.get(subject_id, ())))
            self._cache[subject_id] = hit  # type: ignore[assignment]
        return hit  # type: ignore[return-value]


def run_old(linker, texts: list[str], dec: dict[str, float]) -> list:
    """Per-pair path, chunked like ``predict_submission``."""
    out = []
    for b in range(0, len(texts), CHUNK):
        items = linker.items(texts[b:b + CHUNK])
        spans = linker.ner(items, dec["ner_threshold"])
        out.extend(linker.link_per_pair(items, spans, dec["link_threshold"]))
    return out


def run_new(linker, texts: list[str], dec: dict[str, float]) -> list:
    """Encode-once path, chunked like ``predict_submission``."""
    out = []
    for b in range(0, len(texts), CHUNK):
        items = linker.items(texts[b:b + CHUNK])
        out.extend(linker.predict(items, dec["ner_threshold"], dec["link_threshold"])[1])
    return out


SIDES = {"today": run_old, "per_pair": run_old, "new": run_new}


def rows_of(linked: list) -> list[tuple]:
    return [(t, r.mention, r.offset, r.kb_id, r.n_candidates) for t, res in enumerate(linked)
            for r in res]


def interleaved(linkers: dict[str, Any], texts: list[str], dec: dict[str, float],
                times: dict[str, list[float]], repeat: int) -> dict[str, list]:
    """Every side over the texts in slices of ``SLICE``, rotating which side goes first, so a
    change of load on the box hits all; appends each side's total time to ``times``."""
    names = list(SIDES)
    total = dict.fromkeys(names, 0.0)
    outs: dict[str, list] = {n: [] for n in names}
    for k, b in enumerate(range(0, len(texts), SLICE)):
        shift = (repeat + k) % len(names)
        for side in names[shift:] + names[:shift]:
            t0 = time.perf_counter()
            outs[side].extend(SIDES[side](linkers[side], texts[b:b + SLICE], dec))
            total[side] += time.perf_counter() - t0
    for side in names:
        times[side].append(total[side])
    return outs


def summary(times: dict[str, list[float]], n: int, prefix: str = "") -> dict[str, float]:
    """texts/s of each side (median time) and the median per-repeat ratios to ``new``."""
    out: dict[str, float] = {}
    for side, ts in times.items():
        out[f"{prefix}{side}_texts_per_s"] = round(n / statistics.median(ts), 1)
    for side in ("today", "per_pair"):
        ratios = [a / b for a, b in zip(times[side], times["new"])]
        out[f"{prefix}ratio_vs_{side}"] = round(statistics.median(ratios), 2)
        out[f"{prefix}ratio_vs_{side}_range"] = [round(min(ratios), 2), round(max(ratios), 2)]
    return out


def measure(name: str, tables: dict[str, pd.DataFrame], params: dict[str, Any], n_texts: int,
            repeats: int) -> dict[str, Any]:
    """Train, then time the sides ``repeats`` times (fresh linkers, cold then warm)."""
    t0 = time.perf_counter()
    pruning = learn_behaviour(tables["aliases"], tables["texts"], tables["mentions"],
                              params["pruning"])
    bundle = train_linker(tables["entities"], tables["aliases"], tables["texts"],
                          tables["mentions"], pruning, None, params, seed=0)
    matcher = pruned_matcher(tables["aliases"], pruning)
    train_s = time.perf_counter() - t0
    texts = [str(t) for t in tables["predict"]["text"]][:n_texts]
    dec = params["decode"]

    def fresh(side: str):
        linker = load_linker(bundle, tables["entities"], matcher, pruning["candidate_links"],
                             params["data"]["eval_batch_size"])
        if side == "today":
            f = linker.resources.features
            linker.resources.features = TodayFeatureCache(f.descriptions, f.objects)
        return linker

    cold: dict[str, list[float]] = {n: [] for n in SIDES}
    warm: dict[str, list[float]] = {n: [] for n in SIDES}
    for r in range(repeats):
        linkers = {side: fresh(side) for side in SIDES}
        for times in (cold, warm):
            outs = interleaved(linkers, texts, dec, times, r)
            ref = rows_of(outs["today"])
            assert all(rows_of(o) == ref for o in outs.values()), f"{name}: predictions differ"
        print(f"  {name} repeat {r + 1}: " + ", ".join(
            f"{side} {len(texts) / cold[side][-1]:.0f}" for side in SIDES) + " texts/s cold; "
            + ", ".join(f"{side} {len(texts) / warm[side][-1]:.0f}" for side in SIDES)
            + " warm", flush=True)
    n_pairs = sum(r.n_candidates for res in outs["new"] for r in res)
    floor = floor_seconds(fresh("new"), texts, dec)
    floor_s = floor["items_s"] + floor["ner_s"] + floor["pair_network_s"]
    return {
        "world": name, "entities": len(tables["entities"]), "texts": len(texts),
        "model": {k: params["model"][k] for k in ("char_size", "hidden_size", "max_desc_len")},
        "linked_mentions": len(ref), "candidates_of_linked_spans": n_pairs,
        "train_and_setup_s": round(train_s, 1), "repeats": repeats,
        **summary(cold, len(texts)), **summary(warm, len(texts), "warm_"),
        "identical_predictions": True,
        "floor": {k: round(v, 3) for k, v in floor.items()},
        "floor_ratio_vs_today": round(statistics.median(cold["today"]) / floor_s, 2),
    }


def floor_seconds(linker, texts: list[str], dec: dict[str, float]) -> dict[str, float]:
    """The work no exact linking path can share or skip, timed on the encode-once linker:
    ``items`` (lowercase, jieba, max-matching), the NER pass (one BiLSTM per text) and the
    matcher network's forward on every (span, candidate) pair (``score_encoded``: query BiLSTM
    over the pair's span features, attention projections, the two cross attentions, Dense
    head; batched, fused kernels). Its input depends on the pair's span features, so nothing
    of it is shared between pairs. ``pair_attention_s`` (the ``scaled_dot_product_attention``
    kernels, from ``torch.profiler``) is the part of ``pair_network_s`` spent in attention."""
    from torch.profiler import ProfilerActivity, profile

    from kexue.models.entity_linking import decode

    t0 = time.perf_counter()
    items = linker.items(texts)
    t_items = time.perf_counter() - t0
    t0 = time.perf_counter()
    linker.ner(items, dec["ner_threshold"])
    t_ner = time.perf_counter() - t0
    spent = [0.0]
    score = decode.score_encoded

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = score(*args, **kwargs)
        spent[0] += time.perf_counter() - t
        return out

    decode.score_encoded = timed
    try:
        run_new(linker, texts, dec)
    finally:
        decode.score_encoded = score
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run_new(linker, texts, dec)
    t_attn = sum(e.cpu_time_total for e in prof.key_averages()
                 if e.key == "aten::scaled_dot_product_attention") / 1e6
    return {"items_s": t_items, "ner_s": t_ner, "pair_network_s": spent[0],
            "pair_attention_s": t_attn}


def timed_world(n_entities: int, n_filler: int = 1) -> dict[str, pd.DataFrame]:
    t0 = time.perf_counter()
    tables = embedded_tables(n_entities, n_filler)
    chars = tables["entities"]["description"].str.len().mean()
    print(f"world: {n_entities} entities, {chars:.0f}-char descriptions on average "
          f"({time.perf_counter() - t0:.0f}s)", flush=True)
    return tables


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="default world only, 3 repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--worlds", default="default,gpu_sizes,kb400k")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    repeats = args.repeats or (3 if args.quick else 5)
    worlds = ["default"] if args.quick else args.worlds.split(",")
    rows = []
    if "default" in worlds:
        rows.append(measure("default", timed_world(3000), base_params(), 1000, repeats))
    if "gpu_sizes" in worlds:
        gpu = base_params({"char_size": 128, "hidden_size": 64, "conv_size": 128,
                           "dense_size": 128, "max_desc_len": 512})
        gpu["data"]["max_train_texts"] = 256  # CPU training at these sizes is slow
        rows.append(measure("gpu_sizes", timed_world(3000, n_filler=30), gpu, 200,
                            max(2, repeats // 2)))
    if "kb400k" in worlds:
        rows.append(measure("kb400k", timed_world(400_000), base_params(), 1000, repeats))
    for r in rows:
        print(f"{r['world']:>9}: texts/s today {r['today_texts_per_s']:>7} | per-pair "
              f"{r['per_pair_texts_per_s']:>7} | new {r['new_texts_per_s']:>7} | x"
              f"{r['ratio_vs_today']} vs today, x{r['ratio_vs_per_pair']} vs per-pair | warm x"
              f"{r['warm_ratio_vs_today']}, x{r['warm_ratio_vs_per_pair']} | floor x"
              f"{r['floor_ratio_vs_today']} vs today")
    result = {"benchmark": "linking", "quick": args.quick, "python": platform.python_version(),
              "torch": torch.__version__, "threads": torch.get_num_threads(), **machine_info(),
              "note": "texts/s of the linking node's work (items + NER + linking). today = "
              "per-pair path with the entity features as before issue 14 (regex per entity, "
              "whole-text jieba); per_pair = per-pair path with today's exact faster features; "
              "new = encode-once. ratio_vs_X = median over interleaved repeats of X time / new "
              "time in this process; cold = fresh linkers, warm = per-entity caches filled; "
              "floor_ratio_vs_today = today (cold) / (items + NER pass + the matcher "
              "network's forward on every pair): the best ratio an exact path with these "
              "kernels could reach if everything else (hand features, batching, the "
              "description cache) were free; pair_attention_s = the attention part of it",
              "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
