"""``retrain_entity_linking``: scheduled retraining of the entity linker behind the
champion/challenger gate (final linking F1 on the fixed dev split)."""

from kexue.pipelines.retrain_entity_linking.nodes import RetrainConfig as Parameters
from kexue.pipelines.retrain_entity_linking.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
