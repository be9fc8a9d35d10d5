"""``corpus_ingest``: title-generation corpora (default/CSL/LCSTS/THUCNews) -> pairs + char vocab."""

from kexue.pipelines.corpus_ingest.pipeline import create_pipeline

__all__ = ["create_pipeline"]
