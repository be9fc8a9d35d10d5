"""Custom Kedro datasets (the catalog is the only I/O boundary of the pipelines)."""

from kexue.io.lines import Line, LineSource, TextLinesDataset
from kexue.io.torch_dataset import TorchDataset

__all__ = ["Line", "LineSource", "TextLinesDataset", "TorchDataset"]
