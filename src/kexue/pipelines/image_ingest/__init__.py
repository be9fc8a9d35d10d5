"""``image_ingest``: the project's one reader of images (MNIST / Fashion-MNIST IDX, CIFAR-10, an
image folder, or the embedded digit tables) -> rejects + counts -> a fixed train/val/test split."""

from kexue.pipelines.image_ingest.nodes import IngestConfig as Parameters
from kexue.pipelines.image_ingest.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
