"""Shared fixtures: an isolated copy of the Kedro project and a session runner.

End-to-end tests never write into the repository's ``data/``: they run the real ``conf/`` in a
temporary project root, where ``data/01_raw`` is empty, so the embedded defaults are used.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
# Tests track into each temporary project's own SQLite store, never a developer's server
# (kexue.settings reads MLFLOW_TRACKING_URI once, when it is first imported).
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.setdefault("MPLBACKEND", "Agg")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = PROJECT_ROOT.parent / "shared" / "data-samples"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    """``../shared/data-samples`` (real-format slices); tests using it skip when it is absent."""
    if not SHARED_SAMPLES.is_dir():
        pytest.skip("../shared/data-samples is not present in this clone")
    return SHARED_SAMPLES


def copy_project(dest: Path) -> Path:
    """Copy ``conf/``, ``pyproject.toml`` and ``.telemetry`` into ``dest`` with empty data dirs."""
    shutil.copytree(PROJECT_ROOT / "conf", dest / "conf",
                    ignore=shutil.ignore_patterns("credentials*"))
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy2(PROJECT_ROOT / name, dest / name)
    (dest / "src").mkdir(exist_ok=True)  # bootstrap_project wants it; the installed kexue is used
    for sub in ("01_raw", "02_intermediate", "03_primary", "04_feature", "05_model_input",
                "06_models", "07_model_output", "08_reporting"):
        (dest / "data" / sub).mkdir(parents=True, exist_ok=True)
    return dest


def allow_embedded_data(project: Path, env: str = "gpu") -> Path:
    """Opt the copied project's ``env`` into the embedded default data (as a user would, in
    ``conf/<env>/globals.yml``): the gpu env otherwise refuses it before the first node."""
    globals_yml = project / "conf" / env / "globals.yml"
    text = globals_yml.read_text(encoding="utf-8").replace("embedded_defaults: false",
                                                           "embedded_defaults: true")
    assert "embedded_defaults: true" in text
    globals_yml.write_text(text, encoding="utf-8")
    return project


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models: one intra-op thread avoids OpenMP spinning on a busy 2-core machine
    (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture
def kedro_project(tmp_path: Path) -> Path:
    """A fresh copy of the project (real conf, empty data) to run sessions in."""
    return copy_project(tmp_path / "project")


def run_session(project_path: Path, pipelines: list[str], env: str | None = None,
                runtime_params: dict[str, Any] | None = None,
                **run_kwargs: Any) -> dict[str, Any]:
    """Run ``pipelines`` in one KedroSession at ``project_path``; return the run's outputs."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project_path)
    cwd = os.getcwd()
    os.chdir(project_path)  # relative catalog paths resolve against the project root
    try:
        with KedroSession.create(project_path=project_path, env=env,
                                 runtime_params=runtime_params or {}) as session:
            return session.run(pipeline_names=pipelines, **run_kwargs)
    finally:
        os.chdir(cwd)


@pytest.fixture
def kedro_run() -> Callable[..., dict[str, Any]]:
    """``kedro_run(project_path, ["tricks"], env=None, runtime_params={...})``."""
    return run_session


def kedro_cli() -> str:
    """The ``kedro`` console script of the running interpreter's environment."""
    import sys

    return str(Path(sys.executable).parent / "kedro")


def cli_env() -> dict[str, str]:
    """Subprocess environment for ``kedro run``: no tracking server, no wrapped log lines."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(KEDRO_DISABLE_TELEMETRY="1", MPLBACKEND="Agg", COLUMNS="500")  # rich: no wrap
    return env


def sigkill_after_checkpoints(cmd: list[str], project: Path, ckpts: Path, n: int = 1,
                              grace: float = 0.2) -> None:
    """Start ``cmd`` in ``project``, SIGKILL its process group ``grace`` s after ``n``
    checkpoints exist in ``ckpts`` (i.e. in the middle of the next epoch)."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(cmd, cwd=project, env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(ckpts.glob("*.ckpt"))) < n:
        time.sleep(0.02)
    time.sleep(grace)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert len(list(ckpts.glob("*.ckpt"))) >= n, "no checkpoint was written before the kill"


def rerun_resumes(cmd: list[str], project: Path, ckpts: Path) -> str:
    """Re-run ``cmd``; assert it succeeded, restored a checkpoint and cleared the folder.

    Returns the whitespace-normalised log."""
    import subprocess

    done = subprocess.run(cmd, cwd=project, env=cli_env(), capture_output=True, text=True,
                          timeout=600)
    log = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 0, log[-3000:]
    assert "Restoring states from the checkpoint" in log and not ckpts.exists()
    return log
