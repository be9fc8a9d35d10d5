"""Which process am I? The rank an external launcher (torchrun, srun) gave this process.

Kept free of torch / Lightning imports (``kexue.config`` is plain Python): ``settings.py`` and
the project hooks read it at start-up.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from kexue.config import ConfigError

logger = logging.getLogger(__name__)


def launched_rank() -> tuple[int, int]:
    """``(global rank, world size)`` set by an external launcher, ``(0, 1)`` without one.

    torchrun sets ``RANK`` / ``WORLD_SIZE``; ``srun`` sets ``SLURM_PROCID`` / ``SLURM_NTASKS``.
    ``ddp_spawn`` workers are not "launched": they never run Kedro hooks.
    """
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"])
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        return int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"])
    return 0, 1


def is_rank_zero() -> bool:
    """True in a process that may write outputs (global rank 0, or no launcher at all)."""
    return launched_rank()[0] == 0


def _local_world_size() -> int | None:
    env = os.environ
    if "LOCAL_WORLD_SIZE" in env:
        return int(env["LOCAL_WORLD_SIZE"])
    if "SLURM_NTASKS_PER_NODE" in env:                    # e.g. "4" or "4(x2)"
        return int(env["SLURM_NTASKS_PER_NODE"].split("(")[0])
    return None


def resolve_devices(devices: Any, num_nodes: int) -> tuple[Any, int]:
    """``(devices, num_nodes)`` for the Trainer. Under an external launcher (torchrun, srun) the
    launcher decides: its processes per node and ``world_size // that`` nodes (Lightning checks
    ``devices * num_nodes == WORLD_SIZE``). ``devices: auto`` / ``-1`` and the one-process default
    ``1`` (what ``conf/gpu`` ships) take the launcher's count; ``1`` with several ranks per node
    says so in a warning, since with it Lightning would pick a single-device strategy and every
    rank would train its own model with no gradient sync. Another device count that differs
    from the launcher's is refused with the fix. Unchanged without a launcher.

    Raises:
        ConfigError: ``trainer.devices`` or ``trainer.num_nodes`` contradicts the launcher.
    """
    _, world = launched_rank()
    local = _local_world_size()
    if world <= 1 or not local or isinstance(devices, (list, tuple)):
        return devices, num_nodes
    nodes = max(1, world // local)
    count = int(devices) if str(devices).lstrip("-").isdigit() else devices
    if count in (1, -1, "auto") or count == local:
        if count == 1 and local > 1:
            logger.warning("trainer.devices=1 under a launcher with %d processes per node "
                           "(world size %d): using devices=%d, num_nodes=%d so the ranks join "
                           "one process group. Set trainer.devices=auto to silence this.",
                           local, world, local, nodes)
        if num_nodes not in (1, nodes):
            raise ConfigError(f"Invalid parameter 'trainer.num_nodes': {num_nodes}, but the "
                              f"launcher started {world} processes, {local} per node = {nodes} "
                              "node(s). Fix: leave num_nodes at 1 (the launcher's count is used)"
                              f" or give --nnodes {num_nodes} to the launcher")
        return local, nodes
    raise ConfigError(f"Invalid parameter 'trainer.devices': {devices!r}, but the launcher started "
                      f"{local} processes per node (world size {world}). Fix: "
                      "trainer.devices=auto (the launcher's count), or start "
                      f"{devices} processes per node (torchrun --nproc_per_node {devices}, "
                      f"srun --ntasks-per-node {devices})")
