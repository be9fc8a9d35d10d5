"""MLP classifier for flat image vectors (post 6794's ``mnist_mlp_example``)."""

from kexue.models.mlp.model import MLP, MLPClassifier, MLPConfig, bundle_to_classifier

__all__ = ["MLP", "MLPClassifier", "MLPConfig", "bundle_to_classifier"]
