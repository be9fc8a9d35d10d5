"""Title generation with bidirectional decoding (kexue.fm post 6877)."""

from kexue.pipelines.title_generation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
