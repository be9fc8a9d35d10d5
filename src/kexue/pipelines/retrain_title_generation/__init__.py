"""``retrain_title_generation``: scheduled retraining of the served title generator (the L2R
seq2seq decoded with beam search) behind the champion/challenger gate (test ROUGE-L)."""

from kexue.pipelines.retrain_title_generation.nodes import RetrainConfig as Parameters
from kexue.pipelines.retrain_title_generation.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
