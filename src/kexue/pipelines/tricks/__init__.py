"""``tricks``: Su's gradient-accumulation result (post 6794) and AdaFactor on real MNIST."""

from kexue.pipelines.tricks.parameters import Parameters
from kexue.pipelines.tricks.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
