"""``text_classification``: the post-7234 experiment -- plain, FGM (su / sum) and gradient penalty
on real text (CLUE TNEWS / IFLYTEK, FewCLUE, ChnSentiCorp) or the embedded generated task, over
several seeds, with paired comparisons and an embedding-space robustness probe."""

from kexue.pipelines.text_classification.parameters import Parameters
from kexue.pipelines.text_classification.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
