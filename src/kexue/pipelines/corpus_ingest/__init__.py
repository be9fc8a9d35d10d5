"""``corpus_ingest``: title corpora (default/CSL/LCSTS/THUCNews) -> pairs + char vocabulary."""

from kexue.pipelines.corpus_ingest.nodes import CorpusIngestConfig as Parameters
from kexue.pipelines.corpus_ingest.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
