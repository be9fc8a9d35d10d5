"""The embedded MLflow store: a SQLite file in the project root, created once, under a lock.

``conf/<env>/mlflow.yml`` names the store with ``${kx.tracking_uri:mlflow.db}``, which resolves
through :func:`project_sqlite_uri`:

* the file is taken relative to the Kedro PROJECT ROOT (``kedro.utils.find_kedro_project`` of
  the working directory), as Kedro resolves the catalog's paths; before, a ``kedro run`` started
  from a sub-folder opened a fresh, empty store there, with no champion, so the gate promoted the
  challenger unopposed;
* the store's tables are created (or found current) under an exclusive ``fcntl`` lock on
  ``<file>.lock`` before kedro-mlflow opens it. MLflow creates a new SQLite store by running its
  alembic migrations on first open, and several sessions starting at once on a fresh store (the
  generated Airflow DAG's parallel root tasks, two cron lines at the same minute) interleaved
  those migrations and left a store every later run failed to open.
"""

from __future__ import annotations

import os
from pathlib import Path

_READY: set[Path] = set()  # stores this process already created or found current


def project_root() -> Path:
    """The Kedro project containing the working directory (the working directory outside one)."""
    from kedro.utils import find_kedro_project

    return Path(find_kedro_project(Path.cwd()) or Path.cwd()).resolve()


def project_sqlite_uri(filename: str = "mlflow.db") -> str:
    """``sqlite:///<project root>/<filename>``, its tables created once under a file lock."""
    path = Path(filename) if os.path.isabs(filename) else project_root() / filename
    ensure_store(path)
    return f"sqlite:///{path}"


def ensure_store(path: Path) -> None:
    """Create (or check) the SQLite tracking and registry tables at ``path``, one process at a
    time."""
    path = path.resolve()
    if path in _READY or not path.parent.is_dir():
        return  # a missing folder: leave the error to MLflow, which names the URI
    import fcntl

    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{path}"
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            SqlAlchemyStore(uri, str(path.parent / "mlruns"))
            RegistryStore(uri)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    _READY.add(path)
