"""``reporting``: one self-contained HTML report (``data/08_reporting/report.html``) and its
markdown twin of every pipeline that has run, with the run header and data versions."""

from kexue.pipelines.reporting.parameters import Parameters
from kexue.pipelines.reporting.pipeline import create_pipeline

__all__ = ["Parameters", "create_pipeline"]
