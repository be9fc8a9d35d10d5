"""Custom Kedro datasets (the catalog is the only I/O boundary of the pipelines).

``FigureDataset`` is imported on first use: its parent (kedro-datasets' ``MatplotlibDataset``)
imports ``matplotlib.pyplot``, which the line readers and the other datasets do not need.
"""

from typing import Any

from kexue.io.lines import Line, LineSource, TextLinesDataset
from kexue.io.registry import ChampionDataset, RegistryDecisionDataset
from kexue.io.torch_dataset import TorchDataset

__all__ = ["ChampionDataset", "FigureDataset", "Line", "LineSource", "RegistryDecisionDataset",
           "TextLinesDataset", "TorchDataset"]


def __getattr__(name: str) -> Any:
    if name == "FigureDataset":
        from kexue.io.figures import FigureDataset

        return FigureDataset
    raise AttributeError(f"module 'kexue.io' has no attribute {name!r}")
