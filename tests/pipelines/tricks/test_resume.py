"""Crash-safe training: SIGKILL a real `kedro run` of `tricks` mid-training, corrupt its newest
checkpoint, re-run the same command: it resumes (with a warning about the bad file) and ends with
bit-identical weights and histories to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.conftest import copy_project

KEDRO = str(Path(sys.executable).parent / "kedro")
PARAMS = ("tricks.data.source=digits,tricks.data.n_train=600,tricks.data.n_test=200,"
          "tricks.trainer.max_epochs=4,tricks.trainer.resumable=true,tricks.model.dropout=0.2")
RUNS = ["adam_bs1", "adam_bs1_accum100", "adam_bs100", "adafactor_bs100", "adafactor_bs100_lr1e2"]


def _cmd() -> list[str]:
    return [KEDRO, "run", "--pipelines", "tricks", "--params", PARAMS]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(KEDRO_DISABLE_TELEMETRY="1", MPLBACKEND="Agg", COLUMNS="500")  # rich: no wrap
    return env


def _outputs(project: Path) -> tuple[dict, dict]:
    models = {r: torch.load(project / f"data/06_models/tricks/{r}.pt", weights_only=True)
              for r in RUNS}
    hist = {r: pd.read_parquet(project / f"data/07_model_output/tricks/{r}_history.parquet")
            for r in RUNS}
    return models, hist


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    whole = copy_project(tmp_path / "whole")
    subprocess.run(_cmd(), cwd=whole, env=_env(), check=True, capture_output=True, timeout=600)

    killed = copy_project(tmp_path / "killed")
    ckpts = killed / "data/06_models/checkpoints/tricks/adam_bs1"
    proc = subprocess.Popen(_cmd(), cwd=killed, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(ckpts.glob("*.ckpt"))) < 2:
        time.sleep(0.02)                          # two epoch checkpoints of the batch-1 run ...
    time.sleep(0.3)                               # ... then kill it in the middle of epoch 3
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    saved = sorted(ckpts.glob("*.ckpt"))
    assert proc.returncode == -signal.SIGKILL and len(saved) == 2, saved
    assert not (killed / "data/06_models/tricks/adam_bs1.pt").exists()   # it had not finished
    newest = max(saved, key=lambda p: int(p.stem.split("step=")[1]))
    newest.write_bytes(newest.read_bytes()[:1000])  # a truncated checkpoint

    rerun = subprocess.run(_cmd(), cwd=killed, env=_env(), capture_output=True, text=True,
                           timeout=600)
    log = " ".join((rerun.stdout + rerun.stderr).split())
    assert rerun.returncode == 0, log[-3000:]
    assert "is unreadable" in log and "Restoring states from the checkpoint" in log
    assert not ckpts.exists()                     # cleared once the run finished

    models_a, hist_a = _outputs(whole)
    models_b, hist_b = _outputs(killed)
    for r in RUNS:
        a, b = models_a[r]["state_dict"], models_b[r]["state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a), r
        cols = ["epoch", "optimizer_steps", "train_loss", "val_loss", "val_acc"]
        pd.testing.assert_frame_equal(hist_a[r][cols], hist_b[r][cols])
