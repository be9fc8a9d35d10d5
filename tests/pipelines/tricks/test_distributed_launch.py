"""`kedro run` on 2 CPU processes, both ways the README documents (issue 9):

* ``--params tricks.trainer.devices=2,tricks.trainer.strategy=ddp_spawn``: one Kedro session, each
  training node runs ONCE and spawns 2 ranks;
* ``torchrun --nproc_per_node 2 --no-python kedro run``: every rank runs the pipeline and its
  training nodes join one process group; only rank 0 writes.

Both run with every dataset versioned (``globals: versioned: true``, as ``--env gpu``), so a
second writer would leave a second version folder; and with MLflow on, so a second tracker would
leave a second run.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import cli_env, copy_project, kedro_cli

PARAMS = ("image_ingest.source=digits,tricks.data.n_train=200,tricks.data.n_test=100,"
          "tricks.trainer.max_epochs=1,tricks.trainer.accelerator=cpu,tricks.model.dropout=0.0")


def _project(tmp_path: Path) -> Path:
    project = copy_project(tmp_path / "project")
    (project / "conf" / "local").mkdir(parents=True, exist_ok=True)
    (project / "conf" / "local" / "globals.yml").write_text("versioned: true\n")
    return project


def _run(cmd: list[str], project: Path) -> str:
    env = cli_env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    log = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 0, log[-4000:]
    return log


def _written_once(project: Path) -> list[Path]:
    """Every versioned output of the run: exactly one version folder each."""
    outputs = [p for p in (project / "data").rglob("*") if p.is_dir() and "." in p.name
               and any(c.is_dir() for c in p.iterdir())
               and all(c.name[:4].isdigit() for c in p.iterdir())]
    assert outputs, "no versioned outputs were written"
    twice = [p for p in outputs if len(list(p.iterdir())) != 1]
    assert not twice, f"written more than once: {twice}"
    return outputs


def _mlflow_runs(project: Path) -> int:
    with sqlite3.connect(project / "mlflow.db") as db:
        return db.execute("select count(*) from runs").fetchone()[0]


def _adam_bs1(project: Path) -> dict:
    (path,) = (project / "data/06_models/tricks/adam_bs1.pt").iterdir()
    return torch.load(path / "adam_bs1.pt", weights_only=True)


@pytest.mark.slow
def test_ddp_spawn_trains_each_node_once_on_two_processes(tmp_path: Path) -> None:
    project = _project(tmp_path)
    log = _run([kedro_cli(), "run", "--pipelines", "image_ingest,tricks", "--params",
                PARAMS + ",tricks.trainer.devices=2,tricks.trainer.strategy=ddp_spawn"], project)
    assert log.count("Running node: train_adam_bs1_node") == 1            # one Kedro session
    assert log.count("Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2") >= 5  # per fit
    outputs = _written_once(project)
    assert len(outputs) >= 15 and _mlflow_runs(project) == 1
    bundle = _adam_bs1(project)
    # 200 images, batch 1 per rank on 2 ranks: 100 optimizer steps, all 200 samples seen
    assert bundle["optimizer_steps"] == 100 and bundle["samples_seen"] == 200
    assert bundle["processes"] == 2


@pytest.mark.slow
def test_torchrun_launch_trains_once_per_rank_and_writes_once(tmp_path: Path) -> None:
    project = _project(tmp_path)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "2", "--no-python"]
    log = _run(torchrun + [kedro_cli(), "run", "--pipelines", "image_ingest,tricks", "--params",
                           PARAMS],
               project)
    assert log.count("Running node: train_adam_bs1_node") == 2            # every rank runs it
    assert "rank 1 of 2 keeps its" in log and "rank 0 of 2 writes" in log
    assert log.count("Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2") >= 1
    outputs = _written_once(project)
    assert len(outputs) >= 15 and _mlflow_runs(project) == 1
    bundle = _adam_bs1(project)
    assert bundle["optimizer_steps"] == 100 and bundle["processes"] == 2


@pytest.mark.slow
def test_ddp_spawn_trains_the_entity_linker_and_the_title_models(tmp_path: Path) -> None:
    """The other two training families under ddp_spawn: the linker (EMA on) and all four title
    models (first pass + second pass) train on 2 ranks; the bundles carry the epoch rows and step
    counts that only come back from the workers through SpawnDDPStrategy."""
    from tests.pipelines.entity_linking.test_resume import PARAMS as EL
    from tests.pipelines.title_generation.test_resume import PARAMS as TG

    params = ",".join([
        EL.replace("trainer.resumable=true", "trainer.resumable=false"),
        TG.replace("trainer.resumable=true", "trainer.resumable=false")
          .replace("second_pass.enabled=false", "second_pass.enabled=true")
          .replace("trainer.max_epochs=4", "trainer.max_epochs=2"),
        "entity_linking.trainer.devices=2,entity_linking.trainer.strategy=ddp_spawn",
        "title_generation.trainer.devices=2,title_generation.trainer.strategy=ddp_spawn",
    ])
    project = copy_project(tmp_path / "project")
    log = _run([kedro_cli(), "run", "--pipelines",
                "ccks_ingest,entity_linking,corpus_ingest,title_generation", "--params", params],
               project)
    assert log.count("Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2") >= 5  # 1 + 4 fits
    linker = torch.load(project / "data/06_models/entity_linking_model.pt", weights_only=True)
    summary = linker["train_summary"]
    per_epoch = summary["epochs"][0]["optimizer_steps"]
    n, batch = summary["n_train_texts"], 16
    assert per_epoch == -(-n // (2 * batch))                 # each rank takes half of every step
    assert [r["epoch"] for r in summary["epochs"]] == [1, 2, 3, 4]
    assert summary["global_step"] == 4 * per_epoch
    for name in ("title_gen_l2r_baseline", "title_gen_bidirectional",
                 "title_gen_bidirectional_2pass"):
        bundle = torch.load(project / f"data/06_models/{name}.pt", weights_only=True)
        assert bundle["history"]["steps"] > 0 and bundle["history"]["epochs"], name
