"""``corpus_ingest``: title corpora (default/CSL/LCSTS/THUCNews) -> pairs + char vocabulary."""

from kexue.pipelines.corpus_ingest.pipeline import create_pipeline

__all__ = ["create_pipeline"]
