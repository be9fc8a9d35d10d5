"""The embedded MLflow store: project-root path, created once under a lock."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from kexue.io.tracking_store import project_sqlite_uri

CREATE = """
import sys, time
from pathlib import Path
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
from kexue.io.tracking_store import prepare_store
uri = "sqlite:///" + sys.argv[1]
prepare_store(uri, "kexue", str(Path(sys.argv[1]).parent / "mlruns"))
import mlflow
from mlflow import MlflowClient
MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
mlflow.set_tracking_uri(uri)
mlflow.set_experiment("kexue")       # what kedro-mlflow does next: check, then create
print("ok")
"""


def test_sessions_starting_at_once_on_a_fresh_store_all_open_it(tmp_path: Path) -> None:
    """Four processes open one fresh store at the same instant (the Airflow DAG's parallel root
    tasks). Unlocked, MLflow's first-open migrations interleaved ("table _alembic_tmp_tags
    already exists") and the file stayed broken for every later run; and kedro-mlflow's
    check-then-create of the experiment could fail with RESOURCE_ALREADY_EXISTS."""
    db = tmp_path / "mlflow.db"
    start = time.time() + 8  # past every child's imports
    procs = [subprocess.Popen([sys.executable, "-c", CREATE, str(db), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-800:] for _, err in results]
    assert [out.strip() for out, _ in results] == ["ok"] * 4
    from mlflow import MlflowClient

    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert sorted(e.name for e in client.search_experiments()) == ["Default", "kexue"]
    assert client.get_experiment_by_name("kexue").artifact_location.endswith(
        str(tmp_path / "mlruns"))
    client.create_registered_model("m")                    # the registry tables work too
    assert [m.name for m in client.search_registered_models()] == ["m"]


def test_the_store_is_in_the_project_root_from_any_sub_folder(tmp_path: Path,
                                                              monkeypatch) -> None:
    project = tmp_path / "project"
    (project / "notebooks" / "deep").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "x"\n'
                                            'project_name = "x"\nkedro_init_version = "1.0"\n')
    monkeypatch.chdir(project / "notebooks" / "deep")
    assert project_sqlite_uri("mlflow-gpu.db") == f"sqlite:///{project.resolve()}/mlflow-gpu.db"
    assert not list(project.rglob("*.db"))                 # resolving writes nothing
    assert project_sqlite_uri("/abs/x.db") == "sqlite:////abs/x.db"
