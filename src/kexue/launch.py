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


# Lightning's own rule (``SLURMEnvironment.detect``): these job names mean "SLURM allocated, but
# I start the processes myself", so SLURM is not the launcher.
SLURM_INTERACTIVE_JOB_NAMES = ("bash", "interactive")


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"Environment variable {name}={value!r} is not an integer; the "
                          "launcher set it wrongly, or it was exported by hand. Fix: unset it, "
                          "or start the run with torchrun / srun") from None


def _torchrun_env() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def _srun_step(strict: bool = False) -> tuple[int, int] | None:
    """``(SLURM_PROCID, tasks in this srun step)`` when srun started this process as one task of a
    step with several tasks, else ``None``. The allocation's ``SLURM_NTASKS`` alone is not
    enough: a batch script that runs ``kedro run`` itself (no srun) has it too, and there one
    process must train on one device, not wait for ranks that never start. srun sets
    ``SLURM_STEP_NUM_TASKS`` for its step; a single-task step is one process, not a launcher, and
    so is a job named ``bash`` / ``interactive`` (Lightning's rule; e.g. the shell of
    ``srun --ntasks-per-node 4 --pty bash``, task 0 of a 4-task step). Does not raise unless
    ``strict`` (an unreadable variable, named): it runs when ``settings.py`` is imported, and
    :func:`resolve_devices` calls it strictly when a Trainer is built.
    """
    env = os.environ
    if env.get("SLURM_JOB_NAME") in SLURM_INTERACTIVE_JOB_NAMES:
        return None
    if "SLURM_PROCID" not in env or "SLURM_STEP_NUM_TASKS" not in env:
        return None
    try:
        rank, tasks = _env_int("SLURM_PROCID"), _env_int("SLURM_STEP_NUM_TASKS")
    except ConfigError:
        if strict:
            raise
        return None
    return (rank, tasks) if tasks > 1 else None


def _check_interactive_srun() -> None:
    """Refuse ``srun -n4 kedro run`` in a job named ``bash`` / ``interactive``: Lightning does not
    treat that as a SLURM launch, so every task would train alone and write as rank 0. Only when
    srun started this very process (``SLURM_TASK_PID``), not a command typed in the shell of
    ``srun --pty bash``, which is one process."""
    env = os.environ
    if (env.get("SLURM_JOB_NAME") in SLURM_INTERACTIVE_JOB_NAMES
            and "SLURM_STEP_NUM_TASKS" in env and _env_int("SLURM_STEP_NUM_TASKS") > 1
            and env.get("SLURM_TASK_PID") == str(os.getpid())):
        raise ConfigError(f"srun started {env['SLURM_STEP_NUM_TASKS']} tasks of this command in a "
                          f"job named {env['SLURM_JOB_NAME']!r}, which Lightning does not treat "
                          "as a SLURM launch, so every task would train alone and write as rank "
                          "0. Fix: srun --job-name <name> ..., or one srun task that runs "
                          "torchrun")


def launched_rank() -> tuple[int, int]:
    """``(global rank, world size)`` set by an external launcher, ``(0, 1)`` without one.

    torchrun sets ``RANK`` / ``WORLD_SIZE``; ``srun`` sets ``SLURM_PROCID`` and, for its step,
    ``SLURM_STEP_NUM_TASKS`` (see :func:`_srun_step`). ``ddp_spawn`` workers are not "launched":
    they never run Kedro hooks.
    """
    if _torchrun_env():
        return _env_int("RANK"), _env_int("WORLD_SIZE")
    step = _srun_step()
    return step if step is not None else (0, 1)


def is_rank_zero() -> bool:
    """True in a process that may write outputs (global rank 0, or no launcher at all)."""
    return launched_rank()[0] == 0


def is_launched() -> bool:
    """True when torchrun or a multi-task srun step started this process (:func:`launched_rank`)."""
    return _torchrun_env() or _srun_step() is not None


def _tasks_per_node(var: str) -> int:
    """SLURM's per-node task list, ``"4"``, ``"4(x2)"`` or ``"4(x2),4"``, as one count; uneven
    counts (``"3,2"``) cannot be one Trainer's ``devices`` and are refused."""
    value = os.environ[var]
    try:
        counts = {int(item.split("(")[0]) for item in value.split(",")}
    except ValueError:
        raise ConfigError(f"Environment variable {var}={value!r} is not a SLURM task list "
                          "such as '4' or '4(x2)'. Fix: start the step with srun "
                          "--ntasks-per-node N") from None
    if len(counts) != 1:
        raise ConfigError(f"srun started an uneven number of tasks per node ({var}={value!r}); "
                          "Lightning needs the same number on every node. Fix: srun "
                          "--ntasks-per-node N (N = GPUs per node)")
    return counts.pop()


def _local_world_size() -> int | None:
    """Processes per node that the launcher started, ``None`` if it does not say.

    Under srun, Lightning requires ``SLURM_NTASKS_PER_NODE`` (it refuses ``--ntasks`` alone) and
    checks ``devices`` against it, so that is the count, and the step's own per-node list must
    agree with it.
    """
    env = os.environ
    if _torchrun_env():
        return _env_int("LOCAL_WORLD_SIZE") if "LOCAL_WORLD_SIZE" in env else None
    if "SLURM_NTASKS_PER_NODE" not in env:
        return None
    local = _tasks_per_node("SLURM_NTASKS_PER_NODE")
    if "SLURM_STEP_TASKS_PER_NODE" in env and _tasks_per_node("SLURM_STEP_TASKS_PER_NODE") != local:
        raise ConfigError(f"This srun step runs {env['SLURM_STEP_TASKS_PER_NODE']} tasks per node "
                          f"but the job says --ntasks-per-node={env['SLURM_NTASKS_PER_NODE']}, "
                          "which Lightning checks devices against. Fix: give the step the same "
                          "--ntasks-per-node")
    return local


def _device_count(devices: Any) -> tuple[int | str | None, bool]:
    """What ``trainer.devices`` asks for, as Lightning reads it, and whether it lists device ids:
    ``"auto"``, an int (``-1`` = all), or the number of listed ids (``[0, 1]``, ``"0,1"``);
    ``None`` if unreadable."""
    if isinstance(devices, (list, tuple)):
        return len(devices), True
    text = str(devices).strip()
    if text == "auto":
        return "auto", False
    if "," in text:
        ids = [t for t in text.split(",") if t.strip()]
        return (len(ids) if all(t.strip().isdigit() for t in ids) else None), True
    try:
        return int(text), False
    except ValueError:
        return None, False


def resolve_devices(devices: Any, num_nodes: int) -> tuple[Any, int]:
    """``(devices, num_nodes)`` for the Trainer. Under an external launcher (torchrun, srun) the
    launcher decides: its processes per node, and ``world_size // that`` nodes (Lightning checks
    ``devices * num_nodes == WORLD_SIZE``). ``devices: auto`` / ``-1`` and the one-process default
    ``1`` (what ``conf/gpu`` ships) take the launcher's count: with ``1`` kept, Lightning would
    pick a single-device strategy and every rank would train its own model with no gradient
    sync. A count or id list of the launcher's size is kept; one that contradicts the launcher is
    refused with the fix. Unchanged without a launcher.

    Raises:
        ConfigError: ``trainer.devices`` / ``trainer.num_nodes`` contradicts the launcher, or the
            launcher does not say how many processes it started per node.
    """
    _check_interactive_srun()
    step = _srun_step(strict=True)
    if _torchrun_env():
        world = _env_int("WORLD_SIZE")
    elif step is not None:
        world = step[1]
    else:
        return devices, num_nodes
    local = _local_world_size()
    if local is None:
        if world <= 1:
            return devices, num_nodes
        raise ConfigError(f"A launcher started {world} processes but does not say how many per "
                          "node (no LOCAL_WORLD_SIZE / SLURM_NTASKS_PER_NODE), so "
                          "'trainer.devices' cannot be matched to it. Fix: torchrun "
                          "--nproc_per_node N, or srun --ntasks-per-node N")
    if local < 1 or world % local:
        raise ConfigError(f"The launcher started {world} processes, {local} per node: not a whole "
                          "number of nodes. Fix: the same number of processes on every node "
                          "(torchrun --nproc_per_node N, srun --ntasks-per-node N)")
    nodes = world // local
    count, listed = _device_count(devices)
    if (count in (1, -1, "auto") and not listed) or count == local:
        if num_nodes not in (1, nodes):
            raise ConfigError(f"Invalid parameter 'trainer.num_nodes': {num_nodes}, but the "
                              f"launcher started {world} processes, {local} per node = {nodes} "
                              "node(s). Fix: leave num_nodes at 1 (the launcher's count is used)"
                              f" or give --nnodes {num_nodes} to the launcher")
        if count != local:
            logger.info("trainer.devices=%r under a launcher with %d process(es) per node "
                        "(world size %d): devices=%d, num_nodes=%d", devices, local, world,
                        local, nodes)
        if listed:
            return devices, nodes            # the listed ids, one per local process
        return local, nodes
    raise ConfigError(f"Invalid parameter 'trainer.devices': {devices!r}, but the launcher started "
                      f"{local} process(es) per node (world size {world}). Fix: "
                      "trainer.devices: 1 or auto (the launcher's count is used), or start "
                      "that many processes per node (torchrun --nproc_per_node N, srun "
                      "--ntasks-per-node N)")
