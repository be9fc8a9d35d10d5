"""`kedro run --pipelines image_ingest,nvae` end to end in a temporary project (tiny sizes), and
the report's verdict read from its own numbers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kexue.pipelines.nvae.nodes import report_nvae

TINY = {"nvae": {"cpu_threads": 1, "batch_size": 32,
                 "model": {"channels": 4, "groups_per_scale": 1, "latent_channels": 2},
                 "trainer": {"accelerator": "cpu", "max_epochs": 1, "limit_train_batches": 6},
                 "optimizer": {"warmup_steps": 2},
                 "evaluation": {"iw_samples": 4, "n_test": 40, "batch_size": 20, "chunk": 4,
                                "temperatures": [0.6, 1.0], "n_images": 4, "bn_batches": 2,
                                "bn_batch_size": 8}}}


@pytest.mark.slow
def test_image_ingest_and_nvae_end_to_end(kedro_project, kedro_run):
    kedro_run(kedro_project, ["image_ingest", "nvae"], runtime_params=TINY)
    out = kedro_project / "data" / "08_reporting"
    m = pd.read_csv(out / "nvae_metrics.csv").set_index("model")
    assert list(m.index) == ["nvae", "vae"]
    assert (m["steps"] == 6).all() and (m["n_test"] == 40).all() and (m["iw_k"] == 4).all()
    # same parameter budget (the baseline's width is matched by bisection)
    assert 0.8 < m.loc["vae", "parameters"] / m.loc["nvae", "parameters"] < 1.25
    # IW bound >= ELBO (NLL <= -ELBO) up to noise, and bits/dim is nats / (ln 2 * 784)
    assert (m["iw_nll_nats"] <= -m["elbo_nats"] + 3 * m["iw_nll_se"]).all()
    assert m["bits_per_dim"].tolist() == pytest.approx(
        (m["iw_nll_nats"] / (math.log(2) * 784)).tolist())
    kl = pd.read_csv(out / "nvae_kl_per_group.csv")
    assert kl.groupby("model").size().to_dict() == {"nvae": 2, "vae": 1}   # 2 scales x 1 group
    assert (out / "nvae_samples.png").stat().st_size > 5_000
    report = (out / "nvae_report.md").read_text()
    assert "78.01" in report and "86.76" in report and "## Verdict" in report


def test_report_verdict_follows_the_numbers():
    def metrics(nv: float, va: float) -> pd.DataFrame:
        base = {"iw_nll_se": 0.5, "iw_k": 100, "bits_per_dim": 0.2, "elbo_nats": -120.0,
                "parameters": 1000, "steps": 10, "train_seconds": 1.0, "n_test": 100}
        return pd.DataFrame([{"model": "nvae", **base, "iw_nll_nats": nv},
                             {"model": "vae", **base, "iw_nll_nats": va}])
    kl = pd.DataFrame({"model": ["nvae", "nvae", "vae"], "group": [0, 1, 0],
                       "kl_nats": [0.01, 5.0, 9.0]})
    rep = {"source": "mnist", "shape": [28, 28, 1]}
    assert "NVAE-lite beats" in report_nvae(metrics(100.0, 110.0), kl, rep, "r")
    assert "NVAE-lite loses to" in report_nvae(metrics(110.0, 100.0), kl, rep, "r")
    tie = report_nvae(metrics(100.0, 100.5), kl, rep, "r")
    assert "NVAE-lite ties" in tie and "Collapsed groups (KL < 0.1 nats): [0]" in tie
