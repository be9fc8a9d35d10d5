"""Crash-safe entity linking: SIGKILL a real `kedro run` while the linker trains, re-run: it
resumes from its epoch checkpoint and the bundle (EMA weights) is bit-identical to an
uninterrupted run's -- the random (mention, candidate) pair draws depend on (seed, epoch, index)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import (
    cli_env,
    copy_project,
    kedro_cli,
    rerun_resumes,
    sigkill_after_checkpoints,
)

PARAMS = ",".join([
    "ccks_default.n_entities=600", "ccks_default.n_train_texts=800",
    "ccks_default.n_develop_texts=60", "entity_linking.model.char_size=8",
    "entity_linking.model.hidden_size=4", "entity_linking.model.conv_size=8",
    "entity_linking.model.dense_size=8", "entity_linking.model.heads=2",
    "entity_linking.model.head_dim=4", "entity_linking.model.max_desc_len=16",
    "entity_linking.data.batch_size=16", "entity_linking.data.max_train_texts=400",
    "entity_linking.data.max_dev_texts=32", "entity_linking.data.max_predict_texts=20",
    "entity_linking.trainer.max_epochs=4", "entity_linking.trainer.resumable=true",
    "entity_linking.ema.decay=0.9",
])


def _cmd() -> list[str]:
    return [kedro_cli(), "run", "--pipelines", "ccks_ingest,entity_linking", "--params", PARAMS]


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_linker_training_exactly(tmp_path: Path) -> None:
    whole = copy_project(tmp_path / "whole")
    subprocess.run(_cmd(), cwd=whole, env=cli_env(), check=True, capture_output=True,
                   timeout=600)

    killed = copy_project(tmp_path / "killed")
    ckpts = killed / "data/06_models/checkpoints/entity_linking/linker"
    sigkill_after_checkpoints(_cmd(), killed, ckpts)
    assert not (killed / "data/06_models/entity_linking_model.pt").exists()
    rerun_resumes(_cmd(), killed, ckpts)
    a, b = (torch.load(p / "data/06_models/entity_linking_model.pt", weights_only=True)
            for p in (whole, killed))
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["train_summary"]["epochs"] == b["train_summary"]["epochs"]
    assert [r["epoch"] for r in b["train_summary"]["epochs"]] == [1, 2, 3, 4]
    assert (whole / "data/08_reporting/entity_linking_metrics.csv").read_text() == \
        (killed / "data/08_reporting/entity_linking_metrics.csv").read_text()
