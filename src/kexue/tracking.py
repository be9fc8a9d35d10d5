"""What each catalog entry sends to MLflow, declared in the catalog (see :class:`TrackingHooks`).

kedro-mlflow opens one MLflow run per ``kedro run`` and logs every node's parameters. On top of
that, a dataset whose catalog entry carries ``metadata: {kexue: {track: ...}}`` is logged into
that run right after it is saved, so nodes stay pure and the catalog stays the I/O boundary:

``track: artifact``
    the saved file (model bundles, reports) as an artifact under ``artifact_path`` (default:
    the dataset name); with ``epochs: history.epochs`` (a dotted path into a dict bundle) and
    ``prefix``, the bundle's per-epoch rows are logged as epoch metrics too.
``track: epoch_metrics``
    a per-epoch table: each numeric column as a metric ``<prefix>.<column>`` with
    ``step = <step column>`` (``prefix`` may use the factory placeholder, e.g. ``{run}``).
``track: metrics``
    a final-results table: ``<row[key]>.<column>`` for each numeric column (``columns`` limits
    them); without ``key`` the first row.

The run is also tagged with the git commit (``git_commit``, ``git_dirty``) and the env.
"""

from __future__ import annotations

import logging
import math
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

TRACK_KINDS = ("artifact", "epoch_metrics", "metrics")


def git_state(cwd: str | Path | None = None) -> dict[str, str]:
    """``{"git_commit": sha, "git_dirty": "true"|"false"}``, or ``unknown`` outside a git tree."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": sha, "git_dirty": "true" if dirty else "false"}


def track_spec(dataset: Any) -> dict[str, Any] | None:
    """The ``metadata.kexue`` block of a dataset object, validated, or None."""
    meta = getattr(dataset, "metadata", None) or {}
    spec = meta.get("kexue") if isinstance(meta, dict) else None
    if not spec or "track" not in spec:
        return None
    if spec["track"] not in TRACK_KINDS:
        raise ValueError(f"catalog metadata kexue.track={spec['track']!r}; use one of "
                         f"{list(TRACK_KINDS)}")
    return dict(spec)


def saved_path(dataset: Any) -> Path | None:
    """The file a dataset has just written (the save version's path when versioned)."""
    if getattr(dataset, "_version", None) is not None and hasattr(dataset, "resolve_save_version"):
        return Path(str(dataset._get_versioned_path(dataset.resolve_save_version())))
    for attr in ("_filepath", "_path"):
        value = getattr(dataset, attr, None)
        if value is not None:
            return Path(str(value))
    return None


def _numeric(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def metrics_of(data: Any, spec: dict[str, Any]) -> list[tuple[str, float, int | None]]:
    """``(name, value, step)`` triples to log for ``data`` under ``spec`` (pure); a dict is one
    row of its top-level numeric values (e.g. ``vqvae_metrics``)."""
    if isinstance(data, dict) and spec["track"] == "metrics":
        data = pd.DataFrame([{k: v for k, v in data.items() if _numeric(v) is not None}])
    if not isinstance(data, pd.DataFrame) or data.empty:
        return []
    columns = spec.get("columns") or [c for c in data.columns
                                      if pd.api.types.is_numeric_dtype(data[c])]
    out: list[tuple[str, float, int | None]] = []
    if spec["track"] == "epoch_metrics":
        step_col = spec.get("step", "epoch")
        prefix = spec.get("prefix", "")
        for _, row in data.iterrows():
            step = int(row[step_col]) if step_col in data.columns else None
            for col in columns:
                if col == step_col:
                    continue
                value = _numeric(row[col])
                if value is not None:
                    out.append((f"{prefix}.{col}" if prefix else col, value, step))
    else:
        key = spec.get("key")
        rows = data.iterrows() if key else [(0, data.iloc[0])]
        for _, row in rows:
            for col in columns:
                if col == key:
                    continue
                value = _numeric(row[col])
                if value is not None:
                    out.append((f"{row[key]}.{col}" if key else col, value, None))
    return out


def _dig(data: Any, dotted: str | None) -> Any:
    """``data["a"]["b"]`` for ``"a.b"`` (None when absent)."""
    if not dotted:
        return None
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def sanitize(name: str) -> str:
    """MLflow metric names allow alphanumerics, ``_ - . / :`` and spaces."""
    return "".join(ch if ch.isalnum() or ch in "_-./: " else "_" for ch in name)


class TrackingHooks:
    """Log declared datasets into the active MLflow run (kedro-mlflow's), tag git and env."""

    def __init__(self) -> None:
        self._catalog: Any = None

    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import mlflow

        self._catalog = catalog
        if mlflow.active_run() is None:
            return
        tags = git_state(run_params.get("project_path"))
        tags["kedro_env"] = str(run_params.get("env") or "local")
        mlflow.set_tags(tags)

    @staticmethod
    def end_runs(status: str) -> None:
        """Close every MLflow run still active after kedro-mlflow's own hook: it re-opens its run
        per node (nested), and a leftover active run would be silently REUSED by the next
        KedroSession of the same process (notebooks, tests, one Airflow worker)."""
        import mlflow

        for _ in range(100):
            if mlflow.active_run() is None:
                return
            mlflow.end_run(status)

    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        import mlflow

        if self._catalog is None or mlflow.active_run() is None:
            return
        try:
            dataset = self._catalog[dataset_name]
        except Exception:                     # noqa: BLE001 - undeclared in-memory outputs
            return
        spec = track_spec(dataset)
        if spec is None:
            return
        if spec["track"] == "artifact":
            path = saved_path(dataset)
            if path is not None and path.exists():
                mlflow.log_artifact(str(path), spec.get("artifact_path", dataset_name))
            rows = _dig(data, spec.get("epochs"))
            if rows:
                epoch_spec = {"track": "epoch_metrics", "step": "epoch",
                              "prefix": spec.get("prefix", dataset_name)}
                for name, value, step in metrics_of(pd.DataFrame(rows), epoch_spec):
                    mlflow.log_metric(sanitize(name), value, step=step)
            return
        for name, value, step in metrics_of(data, spec):
            mlflow.log_metric(sanitize(name), value, step=step)
