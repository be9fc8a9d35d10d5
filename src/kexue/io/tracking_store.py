"""The embedded MLflow store: a SQLite file in the project root, prepared once, under a lock.

``conf/<env>/mlflow.yml`` names the store with ``${kx.tracking_uri:mlflow.db}``, which resolves
(purely) through :func:`project_sqlite_uri` to the file in the Kedro PROJECT ROOT
(``kedro.utils.find_kedro_project`` of the working directory), as Kedro resolves the catalog's
paths; before, a ``kedro run`` started from a sub-folder opened a fresh, empty store there, with no
champion, so the gate promoted the challenger unopposed.

:func:`prepare_store` (called by ``kexue.hooks.TrackingStoreHooks`` before kedro-mlflow opens the
env's store) creates or checks the store's tables and the run's experiment under an exclusive
``fcntl`` lock (:func:`store_lock`). MLflow builds a new SQLite store by running its alembic
migrations on first open, and kedro-mlflow creates the experiment with a check-then-create:
several sessions starting at once on a fresh store (the generated Airflow DAG's parallel root
tasks, two cron lines at the same minute) interleaved the migrations and left a store every
later run failed to open. :class:`kexue.io.registry.RegistryDecisionDataset` takes the same lock
around its check, registration and alias move.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

_READY: set[tuple[Path, str]] = set()  # (store, experiment) this process prepared


def project_root() -> Path:
    """The Kedro project containing the working directory (the working directory outside one)."""
    from kedro.utils import find_kedro_project

    return Path(find_kedro_project(Path.cwd()) or Path.cwd()).resolve()


def project_sqlite_uri(filename: str = "mlflow.db") -> str:
    """``sqlite:///<project root>/<filename>`` (an absolute ``filename`` as it is). Pure."""
    path = Path(filename)
    return f"sqlite:///{path if path.is_absolute() else project_root() / path}"


def sqlite_path(uri: str | None) -> Path | None:
    """The file of a ``sqlite:///`` URI, else ``None`` (a server, another database)."""
    if not uri or not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///")).resolve()


@contextlib.contextmanager
def store_lock(uri: str | None) -> Iterator[None]:
    """An exclusive lock per SQLite store file, shared by every process of this machine (a file
    in the temp folder named after the store's path: the project folder may be read-only);
    nothing for other stores."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    import fcntl

    key = hashlib.sha1(str(path).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"kexue-mlflow-{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def prepare_store(uri: str | None, experiment: str | None, artifact_location: str | None) -> None:
    """Create or check a SQLite store's tracking and registry tables and create ``experiment``
    (at ``artifact_location``) when it is missing, one process at a time. Other URIs: nothing."""
    path = sqlite_path(uri)
    if path is None or (path, experiment or "") in _READY or not path.parent.is_dir():
        return  # a missing folder: leave the error to MLflow, which names the URI
    from mlflow import MlflowClient
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with store_lock(uri):
        SqlAlchemyStore(uri, str(path.parent / "mlruns"))
        RegistryStore(uri)
        if experiment:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            if client.get_experiment_by_name(experiment) is None:
                client.create_experiment(experiment, artifact_location=artifact_location)
    _READY.add((path, experiment or ""))
