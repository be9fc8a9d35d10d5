"""Benchmark: framework overhead of the ``tricks`` training path vs a plain PyTorch loop.

Lightning path: exactly what ``train_<run>_node`` runs, ``kexue.models.mlp.training.
fit_classifier`` (``MLPClassifier(KexueModule)`` + ``build_trainer`` + the ``EpochHistory``
callback, validation off). Plain path: the same ``MLP`` module, ``torch.optim.Adam``, the same
seeded ``DataLoader`` and the same number of optimizer steps, in a hand-written loop
(forward, cross-entropy, ``loss / k`` backward, step and zero_grad every ``k`` micro-batches).
Both start from ``seed_everything(seed)`` and iterate the same seeded loader, so after ONE epoch
their weights agree exactly (max abs weight difference printed; one epoch per case because
Lightning draws extra numbers from the loader's generator during an epoch, so later epochs are
shuffled differently from the plain loop, though identically across Lightning runs). Cases:
batch 100; batch 1; batch 1 with 100-step accumulation.

Timing: the median of ``--repeats`` alternating runs (the order rotated every repeat;
``*_per_repeat_range``: the lowest and highest ratio of one repeat's adjacent runs, the
spread), wall clock and process CPU time (the CPU ratio is the robust one on a shared machine), one torch thread as in ``conf/base`` (CPU). Both
paths are timed from the seed to the trained weights: model, optimizer and loader construction
in both, the Trainer's construction and set-up in the Lightning path (earlier versions started
the plain loop's clock after its model was built, the Lightning CPU clock before).

Floor: ``bare_lightning_*_ratio`` times a minimal LightningModule (loss only, no logging) under a
Trainer with every extra off, in the same interleaved repeats: what Lightning's loop costs by
itself, whatever the module does.

Profile: one extra cProfile run of the Lightning path per case, its own time (``tottime``) grouped
into torch compute, Lightning's loop / hook dispatch, Lightning's logging, kexue code and data
loading (``profile`` in the JSON; profiled times are inflated, the shares are what matters).
Phases (``phases_us_per_step``, cases without accumulation): the median microseconds per step
of each phase, the plain loop (fetch, forward, backward, step, zero_grad) against the floor's
bare LightningModule stamping the time in its hooks (between steps = its hooks after the step
plus the next batch's fetch; to_training_step = zero_grad and the dispatch; forward; to_backward;
backward; to_optimizer_step; step_and_after = Adam's step plus the bookkeeping until
``on_train_batch_end``): where Lightning's own per-step time goes.
``trainer_construction_ms``: one Trainer construction with Lightning's entry-point scan of every
installed package against ``build_trainer``'s once-per-process scan
(:mod:`kexue.training.entry_points`); the floor's Trainer is built with the memo too, so node path
and floor compare like for like.
``previous`` holds the ratios before issue 14 (kept across re-measures).

Run: ``.venv/bin/python bench/bench_framework_overhead.py [--quick] [--out FILE]``; prints a table
and writes ``bench/results/framework_overhead.json`` (another machine: ``--out
bench/results/<machine>/framework_overhead.json``; a new file gets no ``previous``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _machine import machine_info  # noqa: E402  (bench/ is on sys.path as the script's folder)

from kexue.data.images.table import load_embedded, to_tensors  # noqa: E402
from kexue.models.mlp import MLP, MLPConfig  # noqa: E402
from kexue.models.mlp.training import fit_classifier  # noqa: E402
from kexue.training.config import OptimizerConfig, TrainerConfig  # noqa: E402
from kexue.training.entry_points import cached_entry_point_scan  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "framework_overhead.json"
SEED = 42


def _loader(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> DataLoader:
    """The seeded shuffling loader every path iterates (same data order in all of them)."""
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(SEED))


def _bare_trainer(epochs: int, accumulate: int = 1) -> L.Trainer:
    """The floor's Trainer: CPU, every extra (logger, progress bar, summary, checkpoints,
    sanity validation) switched off."""
    return L.Trainer(max_epochs=epochs, accelerator="cpu", accumulate_grad_batches=accumulate,
                     logger=False, enable_progress_bar=False, enable_model_summary=False,
                     enable_checkpointing=False, num_sanity_val_steps=0)


def plain_loop(x: torch.Tensor, y: torch.Tensor, cfg: MLPConfig, batch_size: int, accumulate: int,
               epochs: int) -> tuple[float, float, int, dict]:
    """Hand-written training loop with the same init, data order and update rule; timed from
    the seed to the trained weights (model, optimizer and loader construction included, as in
    the Lightning path)."""
    wall, cpu = time.perf_counter(), time.process_time()
    L.seed_everything(SEED, workers=True, verbose=False)
    model = MLP(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = _loader(x, y, batch_size)
    steps = 0
    model.train()
    for _ in range(epochs):
        for i, (xb, yb) in enumerate(loader):
            loss = F.cross_entropy(model(xb), yb)            # (B, 10) logits vs (B,)
            (loss / accumulate).backward()
            if (i + 1) % accumulate == 0 or i + 1 == len(loader):
                optimizer.step()
                optimizer.zero_grad()
                steps += 1
    return time.perf_counter() - wall, time.process_time() - cpu, steps, model.state_dict()


def lightning_path(x: torch.Tensor, y: torch.Tensor, cfg: MLPConfig, batch_size: int,
                   accumulate: int, epochs: int) -> tuple[float, float, int, dict]:
    """The node's code path (``fit_classifier``), validation off."""
    trainer_cfg = TrainerConfig(max_epochs=epochs, accumulate_grad_batches=accumulate,
                                accelerator="cpu")
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit_classifier((x, y), None, cfg, OptimizerConfig(name="adam", lr=1e-3), trainer_cfg,
                            batch_size, SEED, limit_val_batches=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # the whole call, seed to trained weights, Trainer construction included (like the plain loop)
    return wall, cpu, result.optimizer_steps, result.module.model.state_dict()


class BareMLP(L.LightningModule):
    """The floor: a minimal LightningModule (loss only, no logging, no kexue code)."""

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        self.model = MLP(cfg)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        xb, yb = batch
        return F.cross_entropy(self.model(xb), yb)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def bare_lightning(x: torch.Tensor, y: torch.Tensor, cfg: MLPConfig, batch_size: int,
                   accumulate: int, epochs: int) -> tuple[float, float, int, dict]:
    """Lightning's own floor: :class:`BareMLP` and a Trainer with every extra switched off."""
    wall, cpu = time.perf_counter(), time.process_time()
    L.seed_everything(SEED, workers=True, verbose=False)
    module = BareMLP(cfg)
    loader = _loader(x, y, batch_size)
    with cached_entry_point_scan():  # as build_trainer: like for like with the node path
        trainer = _bare_trainer(epochs, accumulate)
    trainer.fit(module, loader)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, int(trainer.global_step), module.model.state_dict()


def plain_phases(x: torch.Tensor, y: torch.Tensor, cfg: MLPConfig, batch_size: int
                 ) -> dict[str, list[float]]:
    """Per-step phase durations (s) of the plain loop: fetch, forward, backward, step, zero."""
    clock = time.perf_counter
    L.seed_everything(SEED, workers=True, verbose=False)
    model = MLP(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = _loader(x, y, batch_size)
    phases: dict[str, list[float]] = {k: [] for k in ("fetch", "forward", "backward", "step",
                                                      "zero_grad")}
    model.train()
    t = clock()
    for xb, yb in loader:
        a = clock()
        loss = F.cross_entropy(model(xb), yb)
        b = clock()
        loss.backward()
        c = clock()
        optimizer.step()
        d = clock()
        optimizer.zero_grad()
        e = clock()
        for key, dt in zip(phases, (a - t, b - a, c - b, d - c, e - d)):
            phases[key].append(dt)
        t = e
    return phases


class PhaseMLP(BareMLP):
    """:class:`BareMLP` stamping the time at Lightning's hooks: per-step phase durations."""

    KEYS = ("between_steps", "to_training_step", "forward", "to_backward", "backward",
            "to_optimizer_step", "step_and_after")

    def on_fit_start(self) -> None:
        self.phases: dict[str, list[float]] = {k: [] for k in self.KEYS}
        self._t: float | None = None

    def _mark(self, key: str) -> None:
        now = time.perf_counter()
        if self._t is not None:
            self.phases[key].append(now - self._t)
        self._t = now

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._mark("between_steps")  # end of the last step's hooks -> next batch fetched

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self._mark("to_training_step")  # zero_grad and Lightning's dispatch
        loss = super().training_step(batch, batch_idx)
        self._mark("forward")
        return loss

    def on_before_backward(self, loss: torch.Tensor) -> None:
        self._mark("to_backward")

    def on_after_backward(self) -> None:
        self._mark("backward")

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        self._mark("to_optimizer_step")

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._mark("step_and_after")  # Adam step + Lightning's bookkeeping


def bare_phases(x: torch.Tensor, y: torch.Tensor, cfg: MLPConfig, batch_size: int
                ) -> dict[str, list[float]]:
    """Per-step phase durations (s) of :class:`PhaseMLP` under the floor's Trainer."""
    L.seed_everything(SEED, workers=True, verbose=False)
    module = PhaseMLP(cfg)
    loader = _loader(x, y, batch_size)
    trainer = _bare_trainer(1)
    trainer.fit(module, loader)
    return module.phases


def phase_table(x: torch.Tensor, y: torch.Tensor, cfg: MLPConfig, batch_size: int,
                repeats: int) -> dict[str, dict[str, float]]:
    """Median microseconds per step of every phase, plain loop vs bare Lightning (interleaved
    runs; the first step of each run, with its warm-up, is left out)."""
    runs: dict[str, list[dict[str, list[float]]]] = {"plain": [], "bare_lightning": []}
    for _ in range(repeats):
        runs["plain"].append(plain_phases(x, y, cfg, batch_size))
        runs["bare_lightning"].append(bare_phases(x, y, cfg, batch_size))
    out: dict[str, dict[str, float]] = {}
    for side, rs in runs.items():
        med = {k: 1e6 * statistics.median(v for r in rs for v in r[k][1:]) for k in rs[0]}
        out[side] = {k: round(v, 1) for k, v in med.items()}
        out[side]["total"] = round(sum(med.values()), 1)
    return out


PROFILE_GROUPS = (  # (group, substrings of the file path); the first match wins
    ("lightning logging (self.log, results)", ("logger_connector", "lightning_utilities")),
    ("lightning loop + hook dispatch", ("lightning/",)),
    ("kexue (module, callbacks)", ("/kexue/",)),
    ("data loading", ("torch/utils/data",)),
    ("torch (ops, autograd, optimizer)", ("torch",)),
    ("bench script", ("bench_framework_overhead",)),
)


def profile_breakdown(fn: Any, *args: Any) -> dict[str, Any]:
    """Own time of ``fn(*args)`` under cProfile, grouped by :data:`PROFILE_GROUPS`."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    fn(*args)
    prof.disable()
    stats = pstats.Stats(prof).stats                         # type: ignore[attr-defined]
    groups: dict[str, float] = {}

    def charge(key: tuple, seconds: float, seen: frozenset = frozenset()) -> None:
        """Own time of library code counts for its group; that of C builtins and the standard
        library (isinstance, deepcopy, contextlib ...) for whoever called them."""
        path = key[0]
        group = next((g for g, keys in PROFILE_GROUPS if any(k in path for k in keys)), None)
        seen = seen | {key}
        callers = {c: v for c, v in stats[key][4].items() if c not in seen}
        weight = sum(v[2] for v in callers.values())
        if group is None and (not callers or weight <= 0):
            group = "other"
        if group is not None:
            groups[group] = groups.get(group, 0.0) + seconds
            return
        for caller, v in callers.items():
            charge(caller, seconds * v[2] / weight, seen)

    for key, (_, _, own, _, _) in stats.items():
        charge(key, own)
    total = sum(groups.values())
    return {"profiled_s": round(total, 3),
            "share": {g: round(t / total, 3) for g, t in sorted(groups.items(),
                                                               key=lambda kv: -kv[1])}}


def trainer_construction_ms(repeats: int) -> dict[str, float]:
    """Median ms of one floor Trainer construction, Lightning's own (it scans every installed
    package's entry points) against inside ``cached_entry_point_scan`` (what ``build_trainer``
    does), interleaved."""
    times: dict[str, list[float]] = {"lightning_scan": [], "cached_scan": []}
    with cached_entry_point_scan():
        _bare_trainer(1)  # fill the memo
    for _ in range(repeats):
        for key in times:
            t = time.perf_counter()
            with cached_entry_point_scan() if key == "cached_scan" else contextlib.nullcontext():
                _bare_trainer(1)
            times[key].append(1000 * (time.perf_counter() - t))
    return {k: round(statistics.median(v), 1) for k, v in times.items()}


def previous_ratios(path: Path) -> dict[str, Any]:
    """``case -> {wall_ratio, cpu_ratio}`` before issue 14: the ``previous`` of the result file
    about to be replaced when it has one (a re-measure keeps the pre-issue baseline), else that
    file's own ratios; nothing for a new file, and nothing for good once a file was written
    without a baseline (another machine has none here)."""
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    if "previous" in old:
        return old["previous"]
    return {r["case"]: {"wall_ratio": r["wall_ratio"], "cpu_ratio": r["cpu_ratio"]}
            for r in old.get("rows", [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (CI smoke run)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(RESULTS),
                        help="result file (another machine: bench/results/<machine>/...)")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)

    table = load_embedded("mnist").sample(frac=1.0, random_state=SEED)
    x_all, y_all = to_tensors(table, "mnist")
    cfg = MLPConfig()                                        # 784-512-512-10, dropout 0.2
    n1 = 200 if args.quick else 800                          # samples for the batch-1 cases
    cases = [  # name, batch, accumulate, samples, epochs
        ("batch 100", 100, 1, 5000, 1),
        ("batch 1", 1, 1, n1, 1),
        ("batch 1 x accumulate 100", 1, 100, n1, 1),
    ]
    rows = []
    previous = previous_ratios(Path(args.out))
    for name, batch, accumulate, n, epochs in cases:
        x, y = x_all[:n], y_all[:n]
        walls: dict[str, list[float]] = {"plain": [], "lightning": [], "bare": []}
        cpus: dict[str, list[float]] = {"plain": [], "lightning": [], "bare": []}
        sides = (("plain", plain_loop), ("lightning", lightning_path), ("bare", bare_lightning))
        for rep in range(args.repeats):
            # rotate who goes first: a fixed order gave one side the same slot every repeat
            for kind, fn in sides[rep % 3:] + sides[:rep % 3]:
                wall, cpu, steps, state = fn(x, y, cfg, batch, accumulate, epochs)
                walls[kind].append(wall)
                cpus[kind].append(cpu)
                if kind == "plain":
                    plain_steps, plain_state = steps, state
                elif kind == "lightning":
                    light_steps, light_state = steps, state
        assert plain_steps == light_steps, (plain_steps, light_steps)
        profile = profile_breakdown(lightning_path, x, y, cfg, batch, accumulate, epochs)
        phases = phase_table(x, y, cfg, batch, args.repeats) if accumulate == 1 else None
        diff = max(float((plain_state[k] - light_state[k]).abs().max()) for k in plain_state)
        med = {k: statistics.median(v) for k, v in walls.items()}
        paired = [a / b for a, b in zip(cpus["lightning"], cpus["plain"])]  # the spread
        paired_bare = [a / b for a, b in zip(cpus["bare"], cpus["plain"])]
        med_cpu = {k: statistics.median(v) for k, v in cpus.items()}
        micro = n * epochs // batch
        rows.append({
            "case": name, "batch_size": batch, "accumulate": accumulate, "samples": n,
            "epochs": epochs, "micro_batches": micro, "optimizer_steps": plain_steps,
            "plain_wall_s": round(med["plain"], 3), "lightning_wall_s": round(med["lightning"], 3),
            "wall_ratio": round(med["lightning"] / med["plain"], 2),
            "plain_cpu_s": round(med_cpu["plain"], 3),
            "lightning_cpu_s": round(med_cpu["lightning"], 3),
            "cpu_ratio": round(med_cpu["lightning"] / med_cpu["plain"], 2),
            "cpu_ratio_per_repeat_range": [round(min(paired), 2), round(max(paired), 2)],
            "bare_cpu_ratio_per_repeat_range": [round(min(paired_bare), 2),
                                                round(max(paired_bare), 2)],
            "overhead_ms_per_micro_batch": round(
                1000 * (med_cpu["lightning"] - med_cpu["plain"]) / max(1, micro), 3),
            "max_abs_weight_diff": diff,
            "bare_lightning_wall_ratio": round(med["bare"] / med["plain"], 2),
            "bare_lightning_cpu_ratio": round(med_cpu["bare"] / med_cpu["plain"], 2),
            "profile": profile,
            **({"phases_us_per_step": phases} if phases else {}),
        })

    header = (f"{'case':26s} {'micro':>6s} {'steps':>6s} {'plain s':>8s} {'light s':>8s} "
              f"{'wall x':>7s} {'cpu x':>6s} {'+ms/mb':>7s} {'max|dW|':>9s} {'bare cpu x':>10s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['case']:26s} {r['micro_batches']:6d} {r['optimizer_steps']:6d} "
              f"{r['plain_wall_s']:8.2f} {r['lightning_wall_s']:8.2f} {r['wall_ratio']:7.2f} "
              f"{r['cpu_ratio']:6.2f} {r['overhead_ms_per_micro_batch']:7.3f} "
              f"{r['max_abs_weight_diff']:9.2e} {r['bare_lightning_cpu_ratio']:10.2f}")
    for r in rows:
        if "phases_us_per_step" in r:
            for side, ph in r["phases_us_per_step"].items():
                print(f"phases {r['case']} {side} (us/step): "
                      + ", ".join(f"{k} {v:.0f}" for k, v in ph.items()))
    for r in rows:
        shares = ", ".join(f"{g} {100 * v:.0f}%" for g, v in r["profile"]["share"].items())
        print(f"profile {r['case']}: {shares}")
    result = {
        "benchmark": "framework_overhead",
        "what": "tricks node path (KexueModule + build_trainer fit) vs plain torch loop, same steps",
        "quick": args.quick, "repeats": args.repeats, "torch_threads": 1,
        "torch": torch.__version__, "lightning": L.__version__, "python": platform.python_version(),
        **machine_info(),
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "rows": rows,
        "trainer_construction_ms": trainer_construction_ms(5 * args.repeats),
        "previous": previous,
    }
    print(f"Trainer construction (ms): {result['trainer_construction_ms']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
