"""The machine a benchmark ran on, recorded in every issue-14 result file (``machine_info()``).

The ratios of ``bench/`` are measured in one process against a baseline, but they still depend
on the CPU (the same commit's linking ratio was 2.7x on an AVX2 machine and 1.8x on an AVX-512
one). ``bench/results/*.json`` come from the machines the README names, ``bench/results/<machine>/``
from others (``--out``); compare ratios of one machine only.
"""

from __future__ import annotations

import os
import platform

import torch


def _cpuinfo() -> dict[str, str]:
    """The first processor's ``/proc/cpuinfo`` fields (empty off Linux)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                out[key.strip()] = value.strip()
    except OSError:
        pass
    return out


def machine_info() -> dict[str, object]:
    """Architecture, CPU model (name, family, model), torch's CPU kernels, core count."""
    info = _cpuinfo()
    return {"machine": platform.machine(),
            "cpu_model": info.get("model name") or platform.processor() or "unknown",
            "cpu_family": info.get("cpu family"), "cpu_model_number": info.get("model"),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpus": os.cpu_count()}
