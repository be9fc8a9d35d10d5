"""Custom Kedro datasets (the catalog is the only I/O boundary of the pipelines)."""

from kexue.io.figures import FigureDataset
from kexue.io.lines import Line, LineSource, TextLinesDataset
from kexue.io.registry import ChampionDataset, RegistryDecisionDataset
from kexue.io.torch_dataset import TorchDataset

__all__ = ["ChampionDataset", "FigureDataset", "Line", "LineSource", "RegistryDecisionDataset",
           "TextLinesDataset", "TorchDataset"]
