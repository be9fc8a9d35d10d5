"""Earlier runs, by version: list them, reload what one wrote, re-run pinned to its inputs.

Every run writes ``run_manifest`` (:mod:`kexue.manifest`); under ``--env gpu`` it is versioned
with the run, and its ``datasets`` say which version of every dataset the run loaded and saved.
These helpers read through the catalog (never a path by hand); ``kedro runs ...``
(:mod:`kexue.cli`) is their command line::

    kedro runs list --env gpu
    kedro runs show 2026-12-01T10.00.00.000Z --env gpu tricks_metrics tricks_adam_bs100_model
    kedro runs rerun 2026-12-01T10.00.00.000Z --env gpu --pipelines tricks \\
        --from-nodes select_tricks_images_node

or, in a notebook (``%load_ext kedro.ipython``): ``catalog.load("tricks_metrics",
version=...)`` and ``session.run(..., load_versions=pinned_inputs(...))``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kedro.io.core import VersionNotFoundError

logger = logging.getLogger(__name__)

MANIFEST = "run_manifest"


def _exists(ds: Any) -> bool:
    try:
        return bool(ds.exists())
    except Exception:                    # noqa: BLE001 -- an unknown state counts as present
        return True


def list_runs(catalog: Any) -> list[dict[str, Any]]:
    """One summary per stored manifest, oldest first (one entry in an unversioned env)."""
    ds = catalog.get(MANIFEST)
    if ds is None:
        raise KeyError(f"'{MANIFEST}' is not in the catalog (conf/base/catalog.yml)")
    versions = ds.list_versions(full_path=False) if getattr(ds, "_version", None) else [None]
    out = []
    for version in sorted(v for v in versions if v is not None) or versions:
        try:
            m = catalog.load(MANIFEST, version=version) if version else catalog.load(MANIFEST)
        except VersionNotFoundError:     # no manifest written yet
            continue
        except Exception as exc:         # noqa: BLE001 -- one bad manifest must not hide the rest
            if version is None and not _exists(ds):
                continue                 # unversioned env before its first run
            logger.warning("kedro runs: manifest %s is unreadable (%s: %s); listed as unreadable",
                           version or MANIFEST, type(exc).__name__, exc)
            out.append({"version": version or "?", "status": "unreadable", "pipelines": "",
                        "commit": "", "parameters": "", "started": None})
            continue
        out.append({"version": version or m.get("run_id"), "status": m.get("status"),
                    "pipelines": ",".join(m.get("pipelines") or []),
                    "commit": str((m.get("git") or {}).get("git_commit", ""))[:10],
                    "parameters": str(m.get("parameters_sha256", ""))[:12],
                    "started": m.get("started")})
    return out


def manifest_of(catalog: Any, version: str | None) -> dict[str, Any]:
    """The manifest of the run ``version`` (``None`` or ``"latest"``: the newest)."""
    if version == "latest":
        version = None
    ds = catalog.get(MANIFEST)
    if version and getattr(ds, "_version", None) is None:
        raise ValueError(f"'{MANIFEST}' is not versioned in this env: earlier runs are not kept "
                         "(run with --env gpu, where every artifact is versioned)")
    return catalog.load(MANIFEST, version=version) if version else catalog.load(MANIFEST)


def version_seen(manifest: dict[str, Any], name: str) -> str | None:
    """The version of ``name`` that run wrote (or else read); ``None`` if unversioned."""
    entry = manifest.get("datasets", {}).get(name)
    if entry is None:
        raise KeyError(f"run {manifest.get('run_id')} did not touch dataset '{name}' "
                       f"(it touched: {', '.join(sorted(manifest.get('datasets', {}))[:20])} ...)")
    return _seen(entry)


def _seen(entry: dict[str, Any]) -> str | None:
    """The version a manifest entry was written at, else read at (None: unversioned)."""
    return entry.get("saved") or entry.get("loaded")


def load_from_run(catalog: Any, manifest: dict[str, Any], name: str) -> Any:
    """Load ``name`` exactly as that run left it (its version, for a versioned dataset)."""
    version = version_seen(manifest, name)
    return catalog.load(name, version=version) if version else catalog.load(name)


def default_outputs(manifest: dict[str, Any]) -> list[str]:
    """What ``kedro runs show`` prints when no dataset is named: the run's metrics."""
    return sorted(n for n, e in manifest.get("datasets", {}).items()
                  if e.get("saved") is not None and n.endswith(("_metrics", "_decision")))


def pinned_inputs(manifest: dict[str, Any], free_inputs: Iterable[str]) -> dict[str, str]:
    """``--load-versions`` for a re-run: every free input of the re-run pipeline that the
    earlier run wrote or read at a version, pinned to that version."""
    seen = {name: _seen(manifest.get("datasets", {}).get(name) or {})
            for name in sorted(free_inputs)}
    return {name: version for name, version in seen.items() if version}


def pinnable(catalog: Any, pins: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split ``pins`` into what ``--load-versions`` accepts (an explicit catalog entry or a
    dataset factory pattern) and what it refuses (runtime catch-all datasets: Kedro raises
    ``DatasetNotFoundError`` for them, so a re-run with them pinned never started)."""
    resolver = catalog.config_resolver
    ok = {n: v for n, v in pins.items()
          if n in resolver.config or resolver.match_dataset_pattern(n)}
    return ok, {n: v for n, v in pins.items() if n not in ok}


def rerun_command(env: str | None, pipelines: list[str], from_nodes: list[str],
                  pins: dict[str, str]) -> list[str]:
    """The equivalent ``kedro run`` command line (printed by ``kedro runs rerun``)."""
    cmd = ["kedro", "run"]
    if env:
        cmd += ["--env", env]
    if pipelines:
        cmd += ["--pipelines", ",".join(pipelines)]
    if from_nodes:
        cmd += ["--from-nodes", ",".join(from_nodes)]
    if pins:
        cmd += ["--load-versions", ",".join(f"{k}:{v}" for k, v in pins.items())]
    return cmd
