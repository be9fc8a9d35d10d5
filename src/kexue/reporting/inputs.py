"""What the ``reporting`` nodes need from the run itself, prepared before the first node by
:class:`kexue.hooks.ReportingHooks`:

* :func:`run_info` -- the report header (run id, env, command, git state, parameters hash), the
  load / save version of every versioned dataset of the run and the datasets this run writes
  (a section is "this run" or "earlier run" by it);
* :func:`absent_report_inputs` -- the reporting nodes' inputs that this run does not write and
  no earlier run wrote: the hook registers them as ``None`` so the report says "not run" for
  their pipeline instead of failing on a missing file. Nothing else is substituted: a dataset
  this run writes, or one found on disk, is loaded as usual.
"""

from __future__ import annotations

from typing import Any

from kexue.manifest import _version, run_header

REPORT_TAG = "reporting"
RUN_INFO = "report_run_info"


def _is_data(name: str) -> bool:
    return not (name.startswith("params:") or name == "parameters" or name == RUN_INFO)


def report_nodes(pipeline: Any) -> list[Any]:
    return [n for n in pipeline.nodes if REPORT_TAG in n.tags]


def absent_report_inputs(pipeline: Any, catalog: Any) -> list[str]:
    """Inputs of the run's reporting nodes that no node of this run writes and that do not
    exist (no file, or no version of a versioned dataset)."""
    produced = pipeline.all_outputs()
    wanted = {i for n in report_nodes(pipeline) for i in n.inputs if _is_data(i)}
    return sorted(name for name in wanted - produced
                  if name in catalog and not catalog.exists(name))


def run_info(run_params: dict[str, Any], pipeline: Any, catalog: Any,
             git: dict[str, Any]) -> dict[str, Any]:
    """The report header and data versions of this run (see the module docstring)."""
    produced = pipeline.all_outputs()
    versions: dict[str, dict[str, Any]] = {}
    for name in sorted(pipeline.datasets()):
        if not _is_data(name) or name not in catalog:
            continue
        try:
            ds = catalog[name]
        except Exception:            # noqa: BLE001 -- a free input registered later (run_id)
            continue
        if getattr(ds, "_version", None) is None:
            continue
        saved = _version(ds, "save") if name in produced else None
        loaded = None if name in produced else _version(ds, "load")
        versions[name] = {"loaded": loaded, "saved": saved}
    return {**run_header(run_params, catalog, git), "produced": sorted(produced),
            "versions": versions}
