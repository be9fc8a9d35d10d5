"""``entity_linking``: CCKS2019 entity linking (kexue.fm/archives/6919) on the ``ccks_ingest`` tables."""

from kexue.pipelines.entity_linking.parameters import Parameters
from kexue.pipelines.entity_linking.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
