"""kexue: Kedro + Lightning pipelines for the Scientific Spaces techniques."""

__version__ = "0.1.0"
