"""Crash-safe training: SIGKILL a real `kedro run` of `tricks` mid-training, corrupt its newest
checkpoint, re-run the same command: it resumes (with a warning about the bad file) and ends with
bit-identical weights and histories to an uninterrupted run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.conftest import (
    cli_env,
    copy_project,
    kedro_cli,
    rerun_resumes,
    sigkill_after_checkpoints,
)

PARAMS = ("image_ingest.source=digits,image_ingest.split.n_test=300,image_ingest.split.n_val=100,"
          "tricks.data.n_train=600,tricks.data.n_test=200,"
          "tricks.trainer.max_epochs=4,tricks.trainer.resumable=true,tricks.model.dropout=0.2")
RUNS = ["adam_bs1", "adam_bs1_accum100", "adam_bs100", "adafactor_bs100", "adafactor_bs100_lr1e2"]


def _cmd() -> list[str]:
    return [kedro_cli(), "run", "--pipelines", "image_ingest,tricks", "--params", PARAMS]


def _outputs(project: Path) -> tuple[dict, dict]:
    models = {r: torch.load(project / f"data/06_models/tricks/{r}.pt", weights_only=True)
              for r in RUNS}
    hist = {r: pd.read_parquet(project / f"data/07_model_output/tricks/{r}_history.parquet")
            for r in RUNS}
    return models, hist


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    whole = copy_project(tmp_path / "whole")
    subprocess.run(_cmd(), cwd=whole, env=cli_env(), check=True, capture_output=True,
                   timeout=600)

    killed = copy_project(tmp_path / "killed")
    ckpts = killed / "data/06_models/checkpoints/tricks/adam_bs1"
    # two epoch checkpoints of the batch-1 run, then a kill in the middle of epoch 3
    sigkill_after_checkpoints(_cmd(), killed, ckpts, n=2, grace=0.3)
    saved = sorted(ckpts.glob("*.ckpt"))
    assert len(saved) == 2, saved
    assert not (killed / "data/06_models/tricks/adam_bs1.pt").exists()   # it had not finished
    newest = max(saved, key=lambda p: int(p.stem.split("step=")[1]))
    newest.write_bytes(newest.read_bytes()[:1000])  # a truncated checkpoint

    log = rerun_resumes(_cmd(), killed, ckpts)
    assert "is unreadable" in log

    models_a, hist_a = _outputs(whole)
    models_b, hist_b = _outputs(killed)
    for r in RUNS:
        a, b = models_a[r]["state_dict"], models_b[r]["state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a), r
        cols = ["epoch", "optimizer_steps", "train_loss", "val_loss", "val_acc"]
        pd.testing.assert_frame_equal(hist_a[r][cols], hist_b[r][cols])
