"""`kedro run --pipelines image_ingest,vqvae` end to end in a temporary project (tiny sizes), and
the report's verdict read from its own numbers."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from kexue.pipelines.vqvae.nodes import ANCHOR, report_vqvae

TINY = {"image_ingest": {"source": "mnist", "split": {"n_val": 200, "n_test": 400}},
        "vqvae": {"cpu_threads": 1, "model": {"hidden": 16, "res_hidden": 8, "codebook_size": 32,
                                              "dead_code_steps": 20},
                  "trainer": {"accelerator": "cpu", "max_epochs": 2},
                  "autoencoder": {"batch_size": 64, "trainer": {"max_epochs": 3}},
                  "prior": {"batch_size": 64, "trainer": {"max_epochs": 4}},
                  "evaluation": {"n_images": 8, "temperatures": [1.0]}}}


@pytest.mark.slow
def test_image_ingest_and_vqvae_end_to_end(kedro_project, kedro_run):
    kedro_run(kedro_project, ["image_ingest", "vqvae"], runtime_params=TINY)
    data = kedro_project / "data"
    m = json.loads((data / "08_reporting/vqvae_metrics.json").read_text())
    assert m["n_test"] == 400 and m["grid"] == [7, 7] and m["codebook_size"] == 32
    assert m["uniform_nats_per_code"] == pytest.approx(math.log(32))
    assert m["prior_nll_nats_per_code"] < 0.75 * math.log(32)          # the prior learned
    assert 0 < m["recon_nmse"] < 1 and m["psnr_db"] > 10
    assert m["codes_used_frac"] > 0.5
    assert m["recon_mse"] == pytest.approx(m["recon_nmse"] * m["pixel_variance"])
    assert m["prior_code_bits_per_pixel"] == pytest.approx(
        m["prior_nll_nats_per_code"] * 49 / (math.log(2) * 784))
    codes = pd.read_parquet(data / "07_model_output/vqvae_codes.parquet")
    assert codes["split"].value_counts().to_dict() == {"train": 4400, "val": 200, "test": 400}
    assert codes.filter(regex=r"^c\d+$").to_numpy().max() < 32 and codes.shape[1] == 3 + 49
    for png in ("vqvae_reconstructions.png", "vqvae_samples.png", "image_preview.png"):
        assert (data / "08_reporting" / png).stat().st_size > 5_000, png
    report = (data / "08_reporting/vqvae_report.md").read_text()
    assert "0.0444" in report and "1.03" in report and "## Verdict" in report
    prior = torch.load(data / "06_models/vqvae_prior.pt", weights_only=True)
    assert prior["config"]["kind"] == "pixelatt" and prior["grid"] == [7, 7]
    hist = pd.read_parquet(data / "07_model_output/vqvae_history.parquet")
    assert hist["epoch"].tolist() == [1, 2, 3] and "train_codes_used_frac" in hist


def test_report_verdict_follows_the_numbers():
    base = {"source": "mnist", "n_train": 10, "n_test": 5, "codebook_size": 64, "code_dim": 16,
            "grid": [7, 7], "recon_nmse": 0.03, "recon_mse": 0.003, "psnr_db": 25.0,
            "prior_nll_nats_per_code": 1.0, "uniform_nats_per_code": math.log(64),
            "prior_nll_nats_per_image": 49.0, "prior_code_bits_per_pixel": 0.09,
            "codes_used_frac": 0.9, "codebook_perplexity": 40.0,
            "train_codes_used_frac_last_epoch": 1.0, "dead_code_restarts": 3, "prior": "pixelatt",
            "anchor": ANCHOR}
    good = report_vqvae(base, {}, "r1")
    assert "well below ln K" in good and "NOT well below" not in good and "(better)" in good
    bad = report_vqvae({**base, "prior_nll_nats_per_code": 4.0, "recon_nmse": 0.2}, {}, "r1")
    assert "NOT well below" in bad and "(worse)" in bad
