"""``ccks_ingest`` pipeline: CCKS2019 entity-linking raw files -> validated parquet tables."""

from kexue.pipelines.ccks_ingest.nodes import CcksIngestConfig as Parameters
from kexue.pipelines.ccks_ingest.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
