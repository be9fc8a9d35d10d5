"""Nodes of ``reporting`` that adapt their inputs to :mod:`kexue.reporting.families` (the other
section nodes call the family builders directly), and the assembling node: the HTML page, its
markdown twin and the figures the twin links to."""

from __future__ import annotations

from typing import Any

import pandas as pd

from kexue.config import build_config
from kexue.pipelines.reporting.parameters import Parameters
from kexue.reporting import families, render


def _top(params: dict[str, Any]) -> Parameters:
    """``params:reporting``, checked (a misspelt key fails here, naming it)."""
    return build_config(Parameters, params, where="params:reporting")


def _concat(*frames: pd.DataFrame | None) -> pd.DataFrame | None:
    present = [f for f in frames if f is not None]
    return pd.concat(present, ignore_index=True) if present else None


def vqvae_section(run: dict[str, Any], metrics: dict[str, Any] | None,
                  history: pd.DataFrame | None, prior_history: pd.DataFrame | None,
                  reconstructions: bytes | None, samples: bytes | None,
                  report: str | None) -> dict[str, Any]:
    """Section of ``vqvae``: reconstructions, samples, curves of both stages, report."""
    return families.vqvae(run, metrics, _concat(history, prior_history), reconstructions,
                          samples, report)


def title_generation_section(run: dict[str, Any], metrics: pd.DataFrame | None,
                             samples: pd.DataFrame | None, l2r: dict[str, Any] | None,
                             r2l: dict[str, Any] | None, bidirectional: dict[str, Any] | None,
                             second_pass: dict[str, Any] | None, report: str | None,
                             params: dict[str, Any]) -> dict[str, Any]:
    """Section of ``title_generation``: decoder comparison, titles beside references, curves."""
    models = {"l2r": l2r, "r2l": r2l, "bidirectional": bidirectional,
              "bidirectional_2pass": second_pass}
    return families.title_generation(run, metrics, samples, models, report,
                                     n_samples=_top(params).title_samples)


def retraining_section(run: dict[str, Any], tricks: str | None, entity_linking: str | None,
                       title_generation: str | None) -> dict[str, Any]:
    """Section of the ``retrain_*`` pipelines: each champion / challenger decision report."""
    return families.retraining(run, {"retrain_tricks": tricks,
                                     "retrain_entity_linking": entity_linking,
                                     "retrain_title_generation": title_generation})


def figure_prefix(run: dict[str, Any]) -> str:
    """Where the markdown twin finds ``report_figures`` (a versioned twin sits two folders
    deeper: ``report.md/<version>/report.md`` and ``report_figures/<version>/report_figures``)."""
    version = (run.get("versions") or {}).get("report_figures", {}).get("saved")
    if version:
        return f"../../{render.FIGURES_DIR}/{version}/{render.FIGURES_DIR}"
    return render.FIGURES_DIR


def assemble_report(run: dict[str, Any], params: dict[str, Any],
                    *sections: dict[str, Any]) -> tuple[str, str, dict[str, bytes]]:
    """The HTML page, the markdown twin and ``{name.png: bytes}`` of every figure."""
    title = _top(params).title
    md = render.to_markdown(run, sections, title=title, figures_dir=figure_prefix(run))
    return render.to_html(run, sections, title=title), md, render.figures_of(sections)
