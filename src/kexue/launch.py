"""Which process am I? The rank an external launcher (torchrun, srun) gave this process.

Kept free of torch / Lightning imports: ``settings.py`` and the project hooks read it at start-up.
"""

from __future__ import annotations

import os
from typing import Any


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
    """``(devices, num_nodes)`` for the Trainer: under an external launcher with ``devices: auto``
    the launcher's processes per node and ``world_size // that`` nodes (Lightning otherwise checks
    ``devices * num_nodes == WORLD_SIZE`` and fails); unchanged elsewhere."""
    _, world = launched_rank()
    local = _local_world_size()
    if world > 1 and local and devices in ("auto", -1, "-1"):
        return local, max(1, world // local)
    return devices, num_nodes
