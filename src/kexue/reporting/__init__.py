"""The run report (``reporting`` pipeline): per-family sections built from what each pipeline
wrote through the catalog, rendered as one self-contained HTML page and a markdown twin.

* :mod:`kexue.reporting.section` -- the section / block data model;
* :mod:`kexue.reporting.families` -- one section builder per pipeline family;
* :mod:`kexue.reporting.figures` -- training curves and the entity-linking funnel (matplotlib);
* :mod:`kexue.reporting.render` -- HTML and markdown;
* :mod:`kexue.reporting.inputs` -- the run header and the "not run" inputs (used by a hook).
"""

from kexue.reporting.render import figures_of, to_html, to_markdown

__all__ = ["figures_of", "to_html", "to_markdown"]
