"""A small character-level text classifier built from ``kexue.nn`` (shared embedding, masked
BiLSTM or CNN encoder, masked pooling) for the adversarial-training experiment (post 7234)."""

from kexue.models.textcls.model import CharClassifier, ClassifierConfig
from kexue.models.textcls.module import ClassifierModule, evaluate, perturbed_accuracy

__all__ = ["CharClassifier", "ClassifierConfig", "ClassifierModule", "evaluate",
           "perturbed_accuracy"]
