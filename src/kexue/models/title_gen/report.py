"""Evaluation tables (metrics, samples, leakage check) and the markdown report."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from kexue.models.title_gen.batching import TitleDataset
from kexue.models.title_gen.config import DecodeConfig
from kexue.models.title_gen.evaluation import decode_split, joint_greedy_split
from kexue.models.title_gen.metrics import generation_metrics
from kexue.models.title_gen.model import Seq2Seq
from kexue.models.title_gen.module import evaluate_ce
from kexue.models.title_gen.training import make_loader

# (method, model) rows of the metrics table, in display order. The baselines are two independent
# unidirectional models (own encoder each, trained on one direction's CE only).
PLAN = (("l2r_greedy", "l2r_baseline"), ("l2r_beam", "l2r_baseline"), ("r2l_beam", "r2l_baseline"),
        ("bidi_beam", "bidirectional"), ("bidi_beam", "bidirectional_2pass"))
# trained direction of each unidirectional baseline (its other decoder is untrained: never reported)
BASELINE_DIRECTION = {"l2r_baseline": "l2r", "r2l_baseline": "r2l"}
METRIC_COLUMNS = ["model", "method", "rouge_1", "rouge_2", "rouge_l", "bleu", "exact_match", "n",
                  "sec_per_example", "time_ratio_vs_l2r_beam", "frac_from_r2l"]


def evaluate_models(models: dict[str, Seq2Seq], test: dict[str, list], vocab: Any,
                    dec: DecodeConfig, device: torch.device, batch_size: int = 32,
                    ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Decode ``test`` with every planned (method, model) and compute metrics + leakage CEs."""
    refs = [str(t) for t in test["target"]]
    rows, outputs = [], {}
    for method, name in PLAN:
        if method not in dec.methods or name not in models:
            continue
        ids, dirs, secs = decode_split(models[name], test["x"], method, beam_size=dec.beam_size,
                                       max_len=dec.max_len, batch_size=dec.batch_size,
                                       device=device, cache=dec.cache)
        hyps = [vocab.decode(r) for r in ids]
        outputs[f"{name}:{method}"] = hyps
        m = generation_metrics(hyps, refs)
        rows.append({"model": name, "method": method, **m,
                     "sec_per_example": secs / max(len(hyps), 1),
                     "frac_from_r2l": (sum(d == "r2l" for d in dirs) / len(dirs)) if dirs else 0.0})
    metrics = pd.DataFrame(rows, columns=[c for c in METRIC_COLUMNS if c != "time_ratio_vs_l2r_beam"])
    ref_rows = metrics[(metrics["method"] == "l2r_beam") & (metrics["model"] == "l2r_baseline")]
    base = float(ref_rows["sec_per_example"].iloc[0]) if len(ref_rows) else float("nan")
    metrics["time_ratio_vs_l2r_beam"] = metrics["sec_per_example"] / base
    metrics = metrics[METRIC_COLUMNS]

    n = min(dec.n_samples, len(refs))
    samples = pd.DataFrame({"pair_id": test["pair_id"][:n],
                            "source": [s[:80] for s in test["source"][:n]],
                            "reference": refs[:n],
                            **{key: hyps[:n] for key, hyps in outputs.items()}})
    return metrics, samples, leakage_check(models, test, dec, device, batch_size)


def leakage_check(models: dict[str, Seq2Seq], test: dict[str, list], dec: DecodeConfig,
                  device: torch.device, batch_size: int) -> dict[str, Any]:
    """Teacher-forced test CE per direction: the unidirectional baselines vs the bidirectional
    models reading GOLD opposite-direction tokens (training condition, leaky) or their OWN
    generated ones (joint greedy decode; the inference condition). Everything runs on
    ``device`` (the training / decoding device, not the CPU when a GPU trained).

    The ``baseline`` entry combines the L2R baseline's CE_l2r and the R2L baseline's CE_r2l (each
    model's untrained direction is not reported).

    The post's symptom: summed two-direction CE of the bidirectional model (gold context) below a
    single unidirectional CE of the baseline, although decoding does not improve as much.
    """
    out: dict[str, Any] = {"n_test": len(test["x"])}
    if not test["x"]:
        return out
    baseline_gold: dict[str, float] = {}
    for name, model in models.items():
        model = model.to(device).eval()
        gold = evaluate_ce(model, make_loader(TitleDataset(test["x"], test["title"]), batch_size, False))
        if name in BASELINE_DIRECTION:
            key = f"ce_{BASELINE_DIRECTION[name]}"
            baseline_gold[key] = gold[key]
            continue
        entry = {"gold_context": gold, "sum_gold": gold["ce_l2r"] + gold["ce_r2l"]}
        if model.bidirectional:
            ctx_l, ctx_r = joint_greedy_split(model, test["x"], max_len=dec.max_len,
                                              batch_size=dec.batch_size, device=device,
                                              cache=dec.cache)
            ds = TitleDataset(test["x"], test["title"], ctx_l, ctx_r)
            gen = evaluate_ce(model, make_loader(ds, batch_size, False))
            entry.update({"generated_context": gen, "sum_generated": gen["ce_l2r"] + gen["ce_r2l"]})
        out[name] = entry
    if len(baseline_gold) == 2:
        out["baseline"] = {"gold_context": baseline_gold, "sum_gold": sum(baseline_gold.values()),
                           "note": "ce_l2r of l2r_baseline, ce_r2l of r2l_baseline"}
    if "baseline" in out and "bidirectional" in out:
        single = min(out["baseline"]["gold_context"].values())
        out["symptom_sum_bidi_gold_below_single_baseline"] = bool(
            out["bidirectional"]["sum_gold"] < single)
    return out


def _md_table(df: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [floatfmt.format(v) if isinstance(v, float) else str(v).replace("|", "/")
                 for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _verdict(metrics: pd.DataFrame) -> str:
    def get(model: str, method: str) -> pd.Series | None:
        sel = metrics[(metrics["model"] == model) & (metrics["method"] == method)]
        return sel.iloc[0] if len(sel) else None

    base, bidi = get("l2r_baseline", "l2r_beam"), get("bidirectional", "bidi_beam")
    if base is None or bidi is None:
        return "Not enough methods were evaluated to compare bidirectional and L2R beam search."
    n = int(base["n"])
    d_rl, d_bleu = bidi["rouge_l"] - base["rouge_l"], bidi["bleu"] - base["bleu"]
    won = d_rl > 0 and d_bleu > 0
    lost = d_rl < 0 and d_bleu < 0
    word = "beats" if won else ("does NOT beat" if lost else "is mixed against")
    text = (f"On this corpus ({n} test pairs) the bidirectional beam search **{word}** the L2R beam "
            f"baseline: ROUGE-L {bidi['rouge_l']:.2f} vs {base['rouge_l']:.2f} ({d_rl:+.2f}), "
            f"BLEU {bidi['bleu']:.2f} vs {base['bleu']:.2f} ({d_bleu:+.2f}), exact match "
            f"{bidi['exact_match']:.3f} vs {base['exact_match']:.3f}, at "
            f"{bidi['time_ratio_vs_l2r_beam']:.2f}x the decoding time.")
    two = get("bidirectional_2pass", "bidi_beam")
    if two is not None:
        text += (f" After the second pass (generated context): ROUGE-L {two['rouge_l']:.2f}, "
                 f"BLEU {two['bleu']:.2f}, exact match {two['exact_match']:.3f}.")
    text += ("\n\nCaveats: one seed; every model gets the same epochs, sizes and optimizer, but "
             "the bidirectional model has the extra cross-direction attention parameters and its "
             "encoder is trained by both directions (the baselines' by one each); the second "
             "pass (if enabled) also adds training epochs, so its gain is not isolated from extra "
             "training. Which single direction is easier depends on the corpus and the run "
             "(compare the L2R and R2L baseline rows); frac_from_r2l shows which direction the "
             "bidirectional beam search picked.")
    if n < 500:
        text += (f" With only {n} test pairs and one seed, differences of a point or two are "
                 "within noise; do not read them as a general result.")
    return text


def _lead_section(metrics: pd.DataFrame, lead: dict[str, Any]) -> list[str]:
    """Lead-N row beside the model rows, and which (model, method) rows beat it."""
    t = lead["test"]
    row = {c: t[c] for c in ("rouge_1", "rouge_2", "rouge_l", "bleu", "exact_match", "n")}
    table = pd.DataFrame([{"model": f"lead-{lead['n']}", "method": "first N chars", **row}]
                         + metrics[["model", "method", *row]].to_dict("records"))
    beats = [f"{r.model}/{r.method}" for r in metrics.itertuples()
             if r.rouge_1 > t["rouge_1"] and r.rouge_2 > t["rouge_2"] and r.rouge_l > t["rouge_l"]]
    verdict = (f"Rows that beat lead-{lead['n']} on all of ROUGE-1/2/L: "
               + (", ".join(beats) if beats else "**none**") + ".")
    return ["## Lead-N baseline (the standard LCSTS floor)\n",
            f"The title is the first N characters of the text; N = {lead['n']} was tuned on dev "
            f"(max ROUGE-L, dev ROUGE-L {lead['dev_rouge_l']:.2f}) and is scored on the same test "
            "pairs with the same metrics.\n", _md_table(table) + "\n", verdict + "\n"]


def render_report(metrics: pd.DataFrame, samples: pd.DataFrame, leakage: dict[str, Any],
                  params: dict[str, Any], run_id: str,
                  overlap: dict[str, Any] | None = None,
                  lead: dict[str, Any] | None = None) -> str:
    """The markdown report of a run (metrics, verdict, lead-N, split overlap, leakage check,
    samples, settings). ``overlap``: :func:`kexue.data.corpora.splits.split_overlap` of the
    pairs; ``lead``: :func:`kexue.models.title_gen.lead.lead_baseline` (or None / disabled)."""
    lines = ["# Title generation: bidirectional vs L2R decoding (post 6877)\n",
             f"Kedro run id: `{run_id}`\n", "## Verdict\n", _verdict(metrics) + "\n",
             "Su himself reported no metric for this model and later noted that training it "
             "directly does not give the paper's gains (outputs can be odd); the baseline is the "
             "required comparison. The baselines are two independent unidirectional seq2seq "
             "models (same architecture without cross-direction attention, each with its own "
             "encoder): `l2r_baseline` trained on the L2R CE only (rows l2r_greedy, l2r_beam) and "
             "`r2l_baseline` on the R2L CE only (row r2l_beam).\n",
             "## Test metrics (char level)\n",
             "ROUGE-1/2/L = mean F1 x 100; BLEU = sacrebleu corpus BLEU (tokenize=char); "
             "exact_match = fraction; time ratio = seconds per example / L2R beam's "
             "(same batch size and device; cached incremental decoding unless "
             "decode.cache is false).\n",
             _md_table(metrics) + "\n"]
    if lead and lead.get("n"):
        lines += _lead_section(metrics, lead)
    if overlap is not None:
        t = overlap["title_overlap"]
        lines += ["## Split overlap (data leakage)\n",
                  f"Sources in more than one split: {overlap['cross_split_sources']} (the split "
                  f"keeps identical sources together). Test titles that also occur verbatim as a "
                  f"train title: **{100 * t['test']:.1f}%** (dev {100 * t['dev']:.1f}%); a model "
                  "can score those by memorising. Repeated sources in the corpus: "
                  f"{overlap['duplicate_sources']}, repeated titles: "
                  f"{overlap['duplicate_titles']}.\n"]
    lines.append("## Leakage check (teacher-forced test CE, nats/token)\n")
    rows = []
    for name in ("baseline", "bidirectional", "bidirectional_2pass"):
        if name not in leakage:
            continue
        e = leakage[name]
        g = e["gold_context"]
        label = "baseline (L2R model / R2L model)" if name == "baseline" else name
        rows.append({"model": label, "context": "gold", "ce_l2r": g["ce_l2r"], "ce_r2l": g["ce_r2l"],
                     "sum": e["sum_gold"]})
        if "generated_context" in e:
            gg = e["generated_context"]
            rows.append({"model": name, "context": "generated (own joint greedy)",
                         "ce_l2r": gg["ce_l2r"], "ce_r2l": gg["ce_r2l"], "sum": e["sum_generated"]})
    if rows:
        lines.append(_md_table(pd.DataFrame(rows)) + "\n")
    if "symptom_sum_bidi_gold_below_single_baseline" in leakage:
        seen = leakage["symptom_sum_bidi_gold_below_single_baseline"]
        lines.append(
            f"Symptom of gold leakage (summed two-direction CE of the bidirectional model with gold "
            f"context below the best single-direction CE of the unidirectional baselines): **{'yes' if seen else 'no'}**. "
            "The gap between the gold-context and generated-context rows is what the model gains "
            "from reading gold opposite-direction tokens it will not have at inference; the "
            "second pass (if enabled) trains on the generated context to close it.\n")
    lines += ["## Samples\n", _md_table(samples.head(10)) + "\n",
              "## Settings\n", "```", _yaml_like(params), "```\n"]
    return "\n".join(lines)


def _yaml_like(d: Any, indent: int = 0) -> str:
    if not isinstance(d, dict):
        return " " * indent + str(d)
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out.append(" " * indent + f"{k}:")
            out.append(_yaml_like(v, indent + 2))
        else:
            out.append(" " * indent + f"{k}: {v}")
    return "\n".join(out)
