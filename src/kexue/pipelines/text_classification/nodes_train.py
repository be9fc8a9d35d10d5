"""Training, comparison, plot and report nodes of ``text_classification`` (post 7234)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import pandas as pd
import torch
from matplotlib.figure import Figure

from kexue.config import ConfigError, build_config, check_keys
from kexue.data.corpora.vocab import CharVocab
from kexue.models.textcls.compare import compare
from kexue.models.textcls.model import ClassifierConfig
from kexue.models.textcls.training import encode, run
from kexue.pipelines.text_classification.parameters import Parameters
from kexue.training.config import AdversarialConfig, OptimizerConfig, TrainerConfig
from kexue.training.threads import torch_threads

logger = logging.getLogger(__name__)
P = "text_classification"
# Su, post 7234 (BERT-base fine-tuning, single runs): dev accuracy in %.
SU = {"tnews": {"plain": 56.58, "fgm": 57.66, "gp": 57.81},
      "iflytek": {"plain": 60.29, "fgm": 62.46, "gp": 62.31}}


@dataclass
class MethodConfig:
    """One compared method: an ``adversarial`` block (``method: none | fgm | gp``) and optional
    optimizer / trainer keys merged over the shared ones (e.g. AdaFactor, accumulation)."""

    adversarial: dict = field(default_factory=dict)
    optimizer: dict = field(default_factory=dict)
    trainer: dict = field(default_factory=dict)
    description: str = ""


@dataclass
class ExperimentConfig:
    """Seeds (the same for every method), batch size, the robustness probe's epsilon."""

    seeds: list = field(default_factory=lambda: [0, 1, 2])
    batch_size: int = 32
    probe_epsilon: float = 1.0
    min_freq: int = 1

    def validate(self) -> None:
        if not self.seeds:
            raise ValueError("seeds: give at least one seed (3 by default, 5 under gpu)")
        if self.probe_epsilon < 0:
            raise ValueError("probe_epsilon must be >= 0")


def _top(params: dict[str, Any]) -> Parameters:
    """``params:text_classification``'s top level, checked (a misspelt key fails here, naming it)."""
    return build_config(Parameters, params, where=P)


def build_vocab(train: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """Char vocabulary of the training texts only."""
    _top(params)
    exp = build_config(ExperimentConfig, params.get("experiment"), where=f"{P}.experiment")
    return CharVocab.from_texts(train["text"].tolist(), min_freq=exp.min_freq).to_dict()


def train_method(train: pd.DataFrame, dev: pd.DataFrame, vocab: dict[str, Any],
                 params: dict[str, Any], method: str) -> pd.DataFrame:
    """Every seed of one method (``params:text_classification.methods.<method>``): one row per
    seed with dev accuracy / macro-F1 (and on dev texts not in train), probe accuracy, time."""
    top = _top(params)
    if method not in (params.get("methods") or {}):
        raise ConfigError(f"Invalid parameter '{P}.methods': no entry {method!r}. Fix: declare it "
                          "(plain, fgm_su, fgm_sum, gp are wired in the pipeline).")
    m = build_config(MethodConfig, params["methods"][method], where=f"{P}.methods.{method}")
    exp = build_config(ExperimentConfig, params.get("experiment"), where=f"{P}.experiment")
    v = CharVocab.from_dict(vocab)
    n_classes = int(max(train["label"].max(), dev["label"].max()) + 1)
    cfg = build_config(ClassifierConfig, {**params.get("model", {}), "vocab_size": len(v),
                                          "n_classes": n_classes}, where=f"{P}.model")
    check_keys(TrainerConfig, params.get("trainer") or {}, where=f"{P}.trainer")
    trainer = build_config(TrainerConfig, {**params.get("trainer", {}), **m.trainer},
                           where=f"{P}.methods.{method}.trainer")
    if trainer.resumable:        # would be ignored: this pipeline's fits keep no checkpoints
        key = f"{P}.methods.{method}.trainer" if "resumable" in m.trainer else f"{P}.trainer"
        raise ConfigError(f"Invalid parameter '{key}.resumable': true, but "
                          "text_classification keeps no epoch checkpoints (each seed x method "
                          "fit is short and is re-run whole). Fix: resumable: false (a killed "
                          "run re-runs this node from the start)")
    optim = build_config(OptimizerConfig, {**params.get("optimizer", {}), **m.optimizer},
                         where=f"{P}.methods.{method}.optimizer")
    adv = build_config(AdversarialConfig, {"embedding": "model.embedding", **m.adversarial},
                       where=f"{P}.methods.{method}.adversarial")
    xt, xd = (encode(f["text"].tolist(), v, cfg.max_len) for f in (train, dev))
    yt, yd = (torch.tensor(f["label"].to_numpy(), dtype=torch.long) for f in (train, dev))
    unseen = ~dev["in_train"].to_numpy(dtype=bool) if "in_train" in dev else None
    rows = []
    with torch_threads(top.cpu_threads):
        for seed in exp.seeds:
            r = run(xt, yt, xd, yd, cfg, optim, trainer, adv, exp.batch_size, int(seed),
                    exp.probe_epsilon, unseen)
            logger.info("text_classification: %s seed %s: dev acc %.4f, probe acc %.4f, %.1f s "
                        "per epoch", method, seed, r["dev_acc"], r["robust_acc"],
                        r["seconds_per_epoch"])
            rows.append({"method": method, **r})
    return pd.DataFrame(rows)


def compare_methods(**runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(metrics, seeds)``: per method mean ± std and the paired difference to ``plain`` with a
    95% t interval; the long per-seed table."""
    seeds = pd.concat(runs.values(), ignore_index=True)
    return compare(seeds), seeds


def plot_seeds(seeds: pd.DataFrame) -> Figure:
    """Per-seed dev accuracy and probe accuracy of every method (lines join the same seed)."""
    matplotlib.use("Agg", force=False)
    fig = Figure(figsize=(9, 3.6))
    methods = list(dict.fromkeys(seeds["method"]))
    for i, col in enumerate(("dev_acc", "robust_acc")):
        ax = fig.add_subplot(1, 2, i + 1)
        for seed, part in seeds.groupby("seed"):
            part = part.set_index("method").reindex(methods)
            ax.plot(range(len(methods)), 100 * part[col], marker="o", alpha=0.7,
                    label=f"seed {seed}")
        ax.set_xticks(range(len(methods)), methods, rotation=20)
        ax.set_ylabel(f"{col} (%)")
        ax.set_title("dev accuracy" if col == "dev_acc" else "accuracy under the probe")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _pm(row: pd.Series, m: str) -> str:
    return f"{100 * row[f'{m}_mean']:.2f} ± {100 * row[f'{m}_std']:.2f}"


def _diff(row: pd.Series, m: str) -> str:
    return (f"{100 * row[f'{m}_diff']:+.2f} [{100 * row[f'{m}_diff_low']:+.2f}, "
            f"{100 * row[f'{m}_diff_high']:+.2f}]")


def report(metrics: pd.DataFrame, ingest: dict[str, Any], params: dict[str, Any],
           run_id: str) -> str:
    """Markdown: our methods over seeds beside Su's single runs, and a measured verdict."""
    exp = build_config(ExperimentConfig, params.get("experiment"), where=f"{P}.experiment")
    m = metrics.set_index("method")
    unseen = "dev_acc_unseen_mean" in m.columns and m["dev_acc_unseen_mean"].notna().all()
    lines = [
        "# Adversarial training on text classification (kexue.fm post 7234)", "",
        f"Kedro run `{run_id}` | source `{ingest['source']}` | {ingest['train']} train / "
        f"{ingest['dev']} dev texts, {ingest['n_classes']} classes | seeds {exp.seeds} (the same "
        f"for every method) | probe epsilon {exp.probe_epsilon}", "",
        (f"Dev texts that also occur in train: {ingest.get('dev_in_train', 0)} (kept, as in the "
         "official dev set; `acc unseen` scores only the others)."), "",
        "| method | dev acc (%) | macro-F1 (%) | paired diff vs plain, 95% CI (points) | "
        "probe acc (%) | probe diff vs plain | " + ("acc unseen (%) | " if unseen else "")
        + "time / epoch vs plain |",
        "|---|---:|---:|---:|---:|---:|" + ("---:|" if unseen else "") + "---:|",
    ]
    for name, r in m.iterrows():
        lines.append(f"| {name} | {_pm(r, 'dev_acc')} | {_pm(r, 'dev_macro_f1')} | "
                     f"{_diff(r, 'dev_acc') if name != 'plain' else '—'} | "
                     f"{_pm(r, 'robust_acc')} | "
                     f"{_diff(r, 'robust_acc') if name != 'plain' else '—'} | "
                     + (f"{_pm(r, 'dev_acc_unseen')} | " if unseen else "")
                     + f"{r['time_ratio']:.2f}x |")
    lines += ["", "Su (BERT-base, single runs, dev acc %): TNEWS 56.58 -> FGM 57.66 / GP 57.81; "
              "IFLYTEK 60.29 -> FGM 62.46 / GP 62.31.", "", "## Verdict", ""]
    for name, r in m.drop(index="plain", errors="ignore").iterrows():
        lo, hi = r["dev_acc_diff_low"], r["dev_acc_diff_high"]
        word = "helps" if lo > 0 else ("hurts" if hi < 0 else "is within seed noise")
        lines.append(f"- `{name}` {word} on dev accuracy ({_diff(r, 'dev_acc')} points; seed "
                     f"std of plain {100 * m.loc['plain', 'dev_acc_std']:.2f}); under the probe "
                     f"{_diff(r, 'robust_acc')}.")
    lines += ["", "Caveats: a small char-level model, not BERT; "
              f"{len(exp.seeds)} seeds (t interval with {len(exp.seeds) - 1} dof).", ""]
    return "\n".join(lines)
