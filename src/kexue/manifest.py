"""The run manifest: what a ``kedro run`` read and wrote, with which code, settings and device.

Written at the end of every run through the catalog (``run_manifest``; versioned like everything
else under ``--env gpu``) by :class:`kexue.hooks.RunManifestHooks`::

    {"run_id", "env", "pipelines", "command", "git": {"git_commit", "git_dirty"},
     "parameters_sha256", "datasets": {name: {"loaded": version|null, "saved": version|null,
     "type": class}}, "packages": {...}, "device": {...}, "started", "finished", "status"}

A versioned dataset's ``loaded`` / ``saved`` is the timestamp Kedro resolved (pass them to
``kedro run --load-versions name:version`` to re-run on exactly those inputs); an unversioned
dataset has ``null``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from importlib import metadata
from typing import Any

from kedro.io.core import VersionNotFoundError

logger = logging.getLogger(__name__)

PACKAGES = ("kexue", "kedro", "kedro-datasets", "lightning", "torch", "pandas", "mlflow",
            "kedro-mlflow")


def parameters_hash(parameters: Any) -> str:
    """sha256 of the parameters as canonical JSON (sorted keys): equal settings, equal hash."""
    text = json.dumps(parameters, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict[str, Any]:
    """Where the run computed: CUDA devices, torch threads, and the CPU kernel level torch
    dispatches to (``AVX2``, ``AVX512``, ...). Trained figures can differ between CPUs by float
    rounding (the README's "Across machines"), so a manifest says which one made them."""
    import os
    import platform

    import torch

    info: dict[str, Any] = {"cuda": torch.cuda.is_available(), "torch_threads":
                            torch.get_num_threads(), "cpus": os.cpu_count(),
                            "machine": platform.machine(),
                            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpus"] = torch.cuda.device_count()
    return info


def run_header(run_params: dict[str, Any], catalog: Any, git: dict[str, str]) -> dict[str, Any]:
    """What identifies a run (the manifest's and the run report's header): run id, env,
    pipelines, command line, git state, parameters hash, start time."""
    params = catalog.load("parameters") if "parameters" in catalog else {}
    return {"run_id": str(run_params.get("run_id") or run_params.get("session_id")),
            "env": run_params.get("env") or "local",
            "pipelines": run_params.get("pipeline_names") or ["__default__"],
            "command": [sys.argv[0].rsplit("/", 1)[-1], *sys.argv[1:]],
            "git": git, "parameters_sha256": parameters_hash(params),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _version(dataset: Any, kind: str) -> str | None:
    fn = getattr(dataset, f"resolve_{kind}_version", None)
    if fn is None or getattr(dataset, "_version", None) is None:
        return None
    try:
        return fn()
    except VersionNotFoundError:  # nothing saved yet: no version to record
        return None
    except Exception as exc:     # noqa: BLE001 -- the manifest must still be written
        logger.warning("run manifest: the %s version of %s could not be resolved (%s: %s); "
                       "recorded as null", kind, type(dataset).__name__, type(exc).__name__, exc)
        return None


class ManifestRecorder:
    """Collects the manifest over one run (the hooks feed it)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.datasets: dict[str, dict[str, Any]] = {}
        self.catalog: Any = None

    def start(self, run_params: dict[str, Any], catalog: Any, git: dict[str, str]) -> None:
        self.catalog, self.datasets = catalog, {}
        self.data = {**run_header(run_params, catalog, git),
                     "runtime_params": run_params.get("runtime_params") or {},
                     "packages": package_versions(), "device": device_info()}

    def touched(self, name: str, kind: str) -> None:
        if name.startswith("params:") or name == "parameters" or self.catalog is None:
            return
        entry = self.datasets.setdefault(name, {"loaded": None, "saved": None, "type": None})
        try:
            ds = self.catalog[name]
        except Exception:        # noqa: BLE001 -- a free input such as run_id
            return
        entry["type"] = type(ds).__name__
        entry[kind] = _version(ds, "load" if kind == "loaded" else "save") or entry[kind]

    def finish(self, status: str) -> dict[str, Any]:
        return {**self.data, "datasets": dict(sorted(self.datasets.items())), "status": status,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
