"""Title generation with bidirectional decoding (kexue.fm post 6877)."""

from kexue.pipelines.title_generation.parameters import Parameters
from kexue.pipelines.title_generation.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
