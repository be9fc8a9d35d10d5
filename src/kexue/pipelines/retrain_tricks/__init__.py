"""``retrain_tricks``: scheduled retraining of the ``tricks`` classifier behind a
champion/challenger gate (MLflow model registry, alias ``champion``)."""

from kexue.pipelines.retrain_tricks.pipeline import create_pipeline

__all__ = ["create_pipeline"]
