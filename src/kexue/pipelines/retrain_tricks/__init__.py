"""``retrain_tricks``: scheduled retraining of the ``tricks`` classifier behind a
champion/challenger gate (MLflow model registry, alias ``champion``)."""

from kexue.pipelines.retrain_tricks.nodes import RetrainConfig as Parameters
from kexue.pipelines.retrain_tricks.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
