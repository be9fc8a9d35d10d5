"""The report's section of each pipeline family, built from what that pipeline wrote through the
catalog. Every input may be ``None`` (the ``reporting`` hook substitutes ``None`` for a dataset
no run has written yet): a section then says "not run" instead of failing.

Each pipeline's own markdown report already carries its metrics tables and the published
anchors beside our numbers; a section shows it, then adds what reads better as a picture or a
focused table (training curves, sample grids, the entity-linking stage funnel, the decoder
comparison, titles beside references, rejects).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from kexue.reporting import figures
from kexue.reporting.section import figure, markdown, section, status_of, table

NOT_RUN_HINT = "Run `kedro run --pipelines {pipes}` to fill this section."


def _not_run(key: str, title: str, pipes: str) -> dict[str, Any]:
    return section(key, title, "not run", [markdown(NOT_RUN_HINT.format(pipes=pipes))])


def _rejects(rejects: pd.DataFrame | None) -> dict[str, int]:
    if rejects is None or len(rejects) == 0 or "reason" not in rejects.columns:
        return {}
    return {str(k): int(v) for k, v in rejects.groupby("reason").size().items()}


def ingest_counts(report: Mapping[str, Any], rejects: pd.DataFrame | None) -> dict[str, Any]:
    """read / accepted / rejected of an ingest report (whatever its layout: ``totals``,
    ``counts``, top-level keys or per-split entries) and the rejects by reason."""
    for key in ("totals", "counts"):
        if isinstance(report.get(key), Mapping) and "read" in report[key]:
            base = report[key]
            break
    else:
        if "read" in report:
            base = report
        else:
            splits = [v for v in (report.get("splits") or {}).values()
                      if isinstance(v, Mapping) and "read" in v]
            base = {k: sum(int(s[k]) for s in splits) for k in ("read", "accepted", "rejected")}
    out = {k: int(base.get(k, 0)) for k in ("read", "accepted", "rejected")}
    out["by_reason"] = _rejects(rejects)
    out["source"] = str(report.get("source") or report.get("corpus") or report.get("task") or "")
    return out


def _rejects_table(rejects: pd.DataFrame | None) -> dict[str, Any] | None:
    if rejects is None or len(rejects) == 0:
        return None
    cols = [c for c in ("file", "line", "reason", "detail") if c in rejects.columns]
    return table(rejects[cols], "Rejected records (file, line, reason)", max_rows=20)


def _ingest(key: str, title: str, pipes: str, run: dict[str, Any], main_name: str,
            report: Mapping[str, Any] | None, rejects: pd.DataFrame | None,
            extra: list[dict[str, Any] | None] | None = None) -> dict[str, Any]:
    status = status_of(report, main_name, run)
    if status == "not run":
        return _not_run(key, title, pipes)
    counts = ingest_counts(report, rejects)
    funnel = pd.DataFrame([{"source": counts["source"], "read": counts["read"],
                            "accepted": counts["accepted"], "rejected": counts["rejected"]}])
    return section(key, title, status, [table(funnel, "Records read, accepted and rejected"),
                                        *(extra or []), _rejects_table(rejects)], ingest=counts)


def image_ingest(run: dict[str, Any], report: Mapping[str, Any] | None,
                 rejects: pd.DataFrame | None, preview: bytes | None) -> dict[str, Any]:
    """Section of ``image_ingest``: counts, split sizes, rejects, preview grid."""
    splits = None
    if report is not None and isinstance(report.get("splits"), Mapping):
        splits = pd.DataFrame([{"split": k, **(v if isinstance(v, Mapping) else {"n": v})}
                               for k, v in report["splits"].items()])
    return _ingest("image_ingest", "Images: ingestion", "image_ingest", run,
                   "image_ingest_report", report, rejects,
                   [table(splits, "Split sizes"),
                    figure(preview, "image_preview", "A preview of each split")])


def ccks_ingest(run: dict[str, Any], report: Mapping[str, Any] | None,
                rejects: pd.DataFrame | None) -> dict[str, Any]:
    """Section of ``ccks_ingest``: counts per file, rejects."""
    files = None
    if report is not None and isinstance(report.get("files"), Mapping):
        files = pd.DataFrame([{"file": k, **{c: v.get(c) for c in ("read", "accepted", "rejected")}}
                              for k, v in report["files"].items()])
    return _ingest("ccks_ingest", "CCKS2019 knowledge base and texts: ingestion", "ccks_ingest",
                   run, "ccks_ingest_report", report, rejects, [table(files, "Per file")])


def corpus_ingest(run: dict[str, Any], report: Mapping[str, Any] | None,
                  rejects: pd.DataFrame | None) -> dict[str, Any]:
    """Section of ``corpus_ingest``: counts, split sizes, rejects."""
    splits = None
    if report is not None and isinstance(report.get("splits"), Mapping):
        splits = pd.DataFrame([{"split": k, "pairs": v if not isinstance(v, Mapping) else
                                v.get("n", v)} for k, v in report["splits"].items()])
    return _ingest("corpus_ingest", "Title corpora: ingestion", "corpus_ingest", run,
                   "corpus_ingest_report", report, rejects, [table(splits, "Split sizes")])


def tricks(run: dict[str, Any], metrics: pd.DataFrame | None, history: pd.DataFrame | None,
           curves_png: bytes | None, report_md: str | None) -> dict[str, Any]:
    """Section of ``tricks``: the accumulation / optimizer plot, training curves, report."""
    key, title = "tricks", "Tricks: gradient accumulation and AdaFactor (MLP on MNIST)"
    status = status_of(metrics, "tricks_metrics", run)
    if status == "not run":
        return _not_run(key, title, "tricks")
    hist = ({str(r): h for r, h in history.groupby("run")} if history is not None
            and "run" in history.columns else {})
    return section(key, title, status, [
        figure(curves_png, "tricks_curves", "Accumulation / optimizer comparison"),
        figure(figures.curves(hist, ["train_loss", "val_loss", "val_acc"], "Training curves"),
               "tricks_training_curves", "Per-epoch training curves of every run"),
        markdown(report_md)])


def vqvae(run: dict[str, Any], metrics: Mapping[str, Any] | None, history: pd.DataFrame | None,
          reconstructions: bytes | None, samples: bytes | None,
          report_md: str | None) -> dict[str, Any]:
    """Section of ``vqvae``: reconstructions, samples, curves of both stages, report."""
    key, title = "vqvae", "VQ-VAE and its autoregressive prior"
    status = status_of(metrics, "vqvae_metrics", run)
    if status == "not run":
        return _not_run(key, title, "image_ingest,vqvae")
    hist = ({str(s): h for s, h in history.groupby("stage")} if history is not None
            and "stage" in history.columns else {"vqvae": history})
    return section(key, title, status, [
        figure(reconstructions, "vqvae_reconstructions", "Test images (top) and reconstructions"),
        figure(samples, "vqvae_samples", "Samples: prior codes decoded"),
        figure(figures.curves(hist, ["train_loss", "train_recon_mse", "train_perplexity",
                                     "train_codes_used_frac"], "VQ-VAE training"),
               "vqvae_training_curves", "Per-epoch training curves"),
        markdown(report_md)])


def _bundle_epochs(bundle: Mapping[str, Any] | None, *path: str) -> list[dict[str, Any]] | None:
    node: Any = bundle
    for p in path:
        if not isinstance(node, Mapping) or p not in node:
            return None
        node = node[p]
    return list(node) if node else None


def nvae(run: dict[str, Any], metrics: pd.DataFrame | None, kl_per_group: pd.DataFrame | None,
         samples: bytes | None, nvae_model: Mapping[str, Any] | None,
         baseline: Mapping[str, Any] | None, report_md: str | None) -> dict[str, Any]:
    """Section of ``nvae``: samples, curves of both models, KL per group, report."""
    key, title = "nvae", "NVAE-lite against a same-size VAE"
    status = status_of(metrics, "nvae_metrics", run)
    if status == "not run":
        return _not_run(key, title, "image_ingest,nvae")
    hist = {"nvae": _bundle_epochs(nvae_model, "history", "epochs"),
            "vae": _bundle_epochs(baseline, "history", "epochs")}
    return section(key, title, status, [
        figure(samples, "nvae_samples", "Samples at temperatures 0.6 / 0.8 / 1.0"),
        figure(figures.curves(hist, ["train_loss", "train_recon", "train_kl"], "Training"),
               "nvae_training_curves", "Per-epoch training curves (same data, steps, schedule)"),
        table(kl_per_group, "KL of every latent group"),
        markdown(report_md)])


def entity_linking(run: dict[str, Any], metrics: pd.DataFrame | None,
                   model: Mapping[str, Any] | None, report_md: str | None) -> dict[str, Any]:
    """Section of ``entity_linking``: the stage funnel, training curves, report."""
    key, title = "entity_linking", "CCKS2019 entity linking"
    status = status_of(metrics, "entity_linking_metrics", run)
    if status == "not run":
        return _not_run(key, title, "ccks_ingest,entity_linking")
    hist = {"linker": _bundle_epochs(model, "train_summary", "epochs")}
    return section(key, title, status, [
        figure(figures.funnel(metrics, "Stage funnel on dev"), "entity_linking_funnel",
               "Precision / recall / F1 after each stage: dictionary match, pruning, NER, "
               "linking"),
        figure(figures.curves(hist, ["train_loss", "train_s1_loss", "train_link_loss",
                                     "train_link_acc"], "Linker training"),
               "entity_linking_training_curves", "Per-epoch training curves"),
        markdown(report_md)])


def title_generation(run: dict[str, Any], metrics: pd.DataFrame | None,
                     samples: pd.DataFrame | None, models: Mapping[str, Any | None],
                     report_md: str | None, n_samples: int = 8) -> dict[str, Any]:
    """Section of ``title_generation``: decoder comparison, titles beside references, curves."""
    key, title = "title_generation", "Title generation: L2R, R2L and bidirectional decoding"
    status = status_of(metrics, "title_generation_metrics", run)
    if status == "not run":
        return _not_run(key, title, "corpus_ingest,title_generation")
    hist = {name: _bundle_epochs(b, "history", "epochs") for name, b in models.items()}
    grid = None
    if samples is not None:
        cols = [c for c in samples.columns if c not in ("pair_id", "source")]
        grid = table(samples[cols], "Generated titles beside the references (test)",
                     max_rows=n_samples)
    compare = None
    if metrics is not None:
        cols = [c for c in ("model", "method", "rouge_1", "rouge_2", "rouge_l", "bleu",
                            "exact_match", "sec_per_example", "time_ratio_vs_l2r_beam")
                if c in metrics.columns]
        compare = table(metrics[cols], "Decoder comparison (test)")
    return section(key, title, status, [
        compare, grid,
        figure(figures.curves(hist, ["train_loss", "val_loss"], "Training"),
               "title_generation_training_curves", "Per-epoch training curves of the four models"),
        markdown(report_md)])


def text_classification(run: dict[str, Any], ingest_report: Mapping[str, Any] | None,
                        rejects: pd.DataFrame | None, metrics: pd.DataFrame | None,
                        seeds_plot: bytes | None, report_md: str | None) -> dict[str, Any]:
    """Section of ``text_classification``: per-seed plot, report, rejects."""
    key, title = "text_classification", "Adversarial training for text classification"
    status = status_of(metrics, "textcls_metrics", run)
    if status == "not run":
        return _not_run(key, title, "text_classification")
    ingest = ingest_counts(ingest_report, rejects) if ingest_report is not None else None
    return section(key, title, status, [
        figure(seeds_plot, "textcls_seeds", "Dev accuracy of every seed and method"),
        markdown(report_md), _rejects_table(rejects)], ingest=ingest)


def retraining(run: dict[str, Any], reports: Mapping[str, str | None]) -> dict[str, Any]:
    """Section of the ``retrain_*`` pipelines: each champion / challenger decision report."""
    key, title = "retraining", "Scheduled retraining: champion / challenger decisions"
    ran = {name: md for name, md in reports.items() if md is not None}
    if not ran:
        return _not_run(key, title, "retrain")
    produced = set(run.get("produced", ()))
    status = "this run" if any(f"{n}_report" in produced for n in ran) else "earlier run"
    return section(key, title, status, [markdown(md) for md in ran.values()],
                   note="not run: " + ", ".join(sorted(set(reports) - set(ran)))
                   if len(ran) < len(reports) else "")
