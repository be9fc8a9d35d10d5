"""Crash-safe training of the image models: SIGKILL a real `kedro run` while the VQ-VAE (then,
separately, the NVAE) trains, re-run the same command: it resumes from the epoch checkpoint and
the bundle is bit-identical to an uninterrupted run's (EMA codebook and dead-code counters,
NVAE's power-iteration vectors and dynamic binarisation included)."""

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

CASES = {
    "vqvae": ("image_ingest,vqvae", "vqvae/autoencoder", "vqvae.pt", ",".join([
        "image_ingest.split.n_test=300", "vqvae.cpu_threads=1", "vqvae.model.hidden=16",
        "vqvae.model.res_hidden=8", "vqvae.model.codebook_size=16", "vqvae.model.dead_code_steps=5",
        "vqvae.trainer.accelerator=cpu", "vqvae.trainer.resumable=true",
        "vqvae.autoencoder.trainer.max_epochs=4", "vqvae.prior.trainer.max_epochs=1",
        "vqvae.evaluation.n_images=4", "vqvae.trainer.limit_train_batches=20"])),
    "nvae": ("image_ingest,nvae", "nvae/nvae", "nvae.pt", ",".join([
        "nvae.cpu_threads=1", "nvae.batch_size=16", "nvae.model.channels=4",
        "nvae.model.groups_per_scale=1", "nvae.model.latent_channels=2",
        "nvae.trainer.accelerator=cpu", "nvae.trainer.resumable=true", "nvae.trainer.max_epochs=4",
        "nvae.trainer.limit_train_batches=8", "nvae.optimizer.warmup_steps=2",
        "nvae.evaluation.iw_samples=2", "nvae.evaluation.n_test=10",
        "nvae.evaluation.bn_batches=1", "nvae.evaluation.n_images=2"])),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_sigkill_then_rerun_resumes_image_model_training_exactly(case: str,
                                                                 tmp_path: Path) -> None:
    pipelines, ckpt_dir, model_file, params = CASES[case]
    cmd = [kedro_cli(), "run", "--pipelines", pipelines, "--params", params]
    whole = copy_project(tmp_path / "whole")
    subprocess.run(cmd, cwd=whole, env=cli_env(), check=True, capture_output=True, timeout=600)
    killed = copy_project(tmp_path / "killed")
    ckpts = killed / "data/06_models/checkpoints" / ckpt_dir
    sigkill_after_checkpoints(cmd, killed, ckpts, n=1, grace=0.2)
    assert not (killed / "data/06_models" / model_file).exists()
    rerun_resumes(cmd, killed, ckpts)
    a, b = (torch.load(p / "data/06_models" / model_file, weights_only=True)
            for p in (whole, killed))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"]), case
    assert [r["epoch"] for r in b["history"]["epochs"]] == [1, 2, 3, 4]
    assert a["history"]["epochs"] == b["history"]["epochs"]
