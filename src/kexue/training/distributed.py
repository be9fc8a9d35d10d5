"""Data-parallel training inside a Kedro node, on Lightning's own strategies.

Two ways to train on several processes, neither of which re-runs ``kedro run`` behind the user's
back (Lightning's plain ``ddp`` launcher re-executes ``sys.argv`` per rank: kedro#2049):

* **One node, ``trainer.strategy: ddp_spawn``** -- the Kedro session runs once; the training node
  spawns ``trainer.devices`` workers (:class:`SpawnDDPStrategy`), and when they finish the parent
  gets rank 0's weights, the callbacks' state (EMA shadow, epoch rows, checkpoint paths) and the
  loop counters (``global_step``, ``current_epoch``), so the node continues as after a 1-process
  fit.
* **External launcher (``torchrun``, ``srun``)** -- every rank runs the whole pipeline; Lightning
  sees the cluster environment and spawns nothing; ``trainer.devices`` auto / -1 / 1 (what
  ``conf/gpu`` ships) becomes the launcher's processes per node and ``num_nodes`` the rest, and a
  count that contradicts the launcher is refused (:func:`resolve_devices`). Only global rank 0
  writes catalog outputs and MLflow tracking (:mod:`kexue.launch`, used by the project hooks).

Gradient bookkeeping that must stay exact under DDP lives here too: :func:`all_reduce_sum` (the
global normaliser of :class:`~kexue.training.accumulation.ExactAccumulation`) and
:func:`suspend_grad_sync` / :func:`average_gradients`, with which FGM and the gradient penalty take
over gradient synchronisation (their extra backward passes do not go through the DDP wrapper's
forward, so DDP's reducer would sync only part of the gradient).
"""

from __future__ import annotations

import logging
import os
import pickle
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.environments import LightningEnvironment
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher

from kexue.launch import (
    SLURM_INTERACTIVE_JOB_NAMES,
    is_launched,
    is_rank_zero,
    launched_rank,
    resolve_devices,
)

__all__ = ["SpawnDDPStrategy", "all_reduce_sum", "average_gradients", "cluster_plugins",
           "is_rank_zero", "launched_rank", "resolve_devices", "steps_after_this_batch",
           "suspend_grad_sync", "world_size"]

logger = logging.getLogger(__name__)


def cluster_plugins() -> list[Any]:
    """The Trainer's cluster environment when it must differ from Lightning's own choice.

    Lightning takes SLURM as the launcher whenever ``SLURM_NTASKS`` is set, also in a batch
    script that runs ``kedro run`` itself and in a single-task srun step. There it reads the
    ranks from SLURM, so ``ddp_spawn`` workers would all be rank 0 and ``devices: auto`` would
    wait for ranks that never start. Where :func:`kexue.launch.is_launched` says no launcher
    started this process, the plain :class:`LightningEnvironment` is used, so the one process
    trains as it would outside SLURM (and ``check_launcher`` still refuses a re-executing ddp).
    """
    # SLURMEnvironment.detect()'s test, without its "srun is available but not used" warning
    slurm = ("SLURM_NTASKS" in os.environ
             and os.environ.get("SLURM_JOB_NAME") not in SLURM_INTERACTIVE_JOB_NAMES)
    if slurm and not is_launched():
        return [LightningEnvironment()]
    return []


# -- ddp_spawn that returns what a node needs ----------------------------------------------------
class _StatefulSpawnLauncher(_MultiProcessingLauncher):
    """Lightning's spawn launcher, also returning every callback's ``state_dict`` and the fit
    loop's counters from rank 0 (Lightning returns only the weights and ``callback_metrics``)."""

    def get_extra_results(self, trainer: L.Trainer) -> dict[str, Any]:
        extra = super().get_extra_results(trainer)
        state = {"callbacks": {cb.state_key: cb.state_dict() for cb in trainer.callbacks},
                 "fit_loop": trainer.fit_loop.state_dict(),
                 "max_batches": trainer.fit_loop.max_batches}
        # plain pickle to bytes: no shared-memory tensors on the result queue (as Lightning does)
        extra["kexue_state"] = pickle.dumps(state)
        return extra

    def update_main_process_results(self, trainer: L.Trainer, extra: dict[str, Any]) -> None:
        super().update_main_process_results(trainer, extra)
        if "kexue_state" not in extra:
            return
        state = pickle.loads(extra["kexue_state"])   # from our own worker process
        for cb in trainer.callbacks:
            if cb.state_key in state["callbacks"]:
                cb.load_state_dict(state["callbacks"][cb.state_key])
        trainer.fit_loop.load_state_dict(state["fit_loop"])
        trainer.fit_loop.max_batches = state["max_batches"]


class SpawnDDPStrategy(DDPStrategy):
    """``ddp_spawn`` for a training node: the Kedro session stays one process; see the module doc.

    Differs from Lightning's ``"ddp_spawn"`` only in what comes back to the parent process.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(start_method="spawn", **kwargs)

    def _configure_launcher(self) -> None:
        self._launcher = _StatefulSpawnLauncher(self, start_method=self._start_method)


# -- collectives used by the trick callbacks --------------------------------------------------
def world_size(trainer: L.Trainer) -> int:
    """Number of data-parallel processes of ``trainer`` (1 without DDP)."""
    return max(1, int(getattr(trainer, "world_size", 1) or 1))


def all_reduce_sum(values: list[float], trainer: L.Trainer, device: Any = None) -> list[float]:
    """Sum ``values`` over all ranks (identity on one process). Every rank must call it."""
    if world_size(trainer) == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    return [float(v) for v in trainer.strategy.reduce(t, reduce_op="sum")]


def _ddp_module(trainer: L.Trainer) -> Any:
    from torch.nn.parallel import DistributedDataParallel

    model = getattr(trainer.strategy, "model", None)
    return model if isinstance(model, DistributedDataParallel) else None


def suspend_grad_sync(trainer: L.Trainer) -> bool:
    """Stop DDP's reducer from syncing this micro-batch (call before the forward); the caller then
    owes an :func:`average_gradients` before the optimizer steps. Returns whether DDP is on."""
    ddp = _ddp_module(trainer) if world_size(trainer) > 1 else None
    if ddp is None:
        return False
    ddp.require_backward_grad_sync = False
    return True


def steps_after_this_batch(trainer: L.Trainer) -> bool:
    """Whether the optimizer steps after the current micro-batch (window full or epoch end)."""
    return not trainer.fit_loop.epoch_loop._should_accumulate()


@torch.no_grad()
def average_gradients(module: torch.nn.Module) -> None:
    """``p.grad <- mean over ranks`` for every trainable parameter, in one flat all-reduce.

    A parameter without a gradient on every rank keeps ``None`` (so optimizers skip it as on one
    process); one with a gradient on some ranks counts as zero on the others. Averaging a
    gradient that DDP has already averaged leaves it unchanged, so this is safe to call after a
    partly synchronised backward.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    device = params[0].device
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
    dist.all_reduce(has)
    live = [p for p, h in zip(params, has.tolist(), strict=True) if h > 0]
    if not live:
        return
    dtype = torch.promote_types(live[0].dtype, torch.float32)
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(dtype)
                      for p in live])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p in live:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).to(p.dtype).clone()
        offset += n
