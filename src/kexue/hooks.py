"""Project hooks: checks before the first node, reproducible seeding and run-id bookkeeping.

Training nodes also seed themselves (hooks do not run inside ``ParallelRunner`` workers and tests
call node functions directly); this hook sets the process-wide default for everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)


class SeedHooks:
    """Seed Python, NumPy and torch from ``params:seed`` before every pipeline run."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import lightning as L

        seed = int(catalog.load("params:seed")) if "params:seed" in catalog else 0
        L.seed_everything(seed, workers=True, verbose=False)
        logger.info("Seeded run %s with params:seed=%d", run_params.get("run_id"), seed)


class RunMetadataHooks:
    """Expose the Kedro run id to nodes as the free input ``run_id`` and log it.

    The run id equals the save version of every versioned dataset of the run (``--env gpu``), so
    reports that print it can be matched to their artifacts.
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        run_id = str(run_params.get("run_id") or run_params.get("session_id") or "unknown")
        catalog["run_id"] = run_id
        logger.info(
            "kedro run %s: env=%s pipelines=%s",
            run_id,
            run_params.get("env") or "local",
            run_params.get("pipeline_names") or ["__default__"],
        )


def _end_tracking_runs() -> None:
    """A refusal before the first node: close the MLflow run kedro-mlflow has just opened (Kedro
    calls no ``on_pipeline_error`` for ``before_pipeline_run``), so it is marked FAILED and not
    reused by the next session of the same process."""
    from kexue.tracking import TrackingHooks

    TrackingHooks.end_runs("FAILED")


def parameter_schemas(names: Iterable[str]) -> dict[str, type]:
    """``{pipeline: its Parameters dataclass}`` for every name that is a pipeline package of
    ``kexue.pipelines`` exporting one (``params:seed`` and other plain values have none)."""
    import importlib
    import importlib.util

    schemas = {}
    for name in names:
        module = f"kexue.pipelines.{name}"
        if importlib.util.find_spec(module) is None:
            continue
        schema = getattr(importlib.import_module(module), "Parameters", None)
        if schema is not None:
            schemas[name] = schema
    return schemas


class PreflightHooks:
    """Fail before the first node when the run cannot do what it asks (:mod:`kexue.preflight`):
    a misspelt or mistyped top-level parameter of a pipeline it runs, a GPU requested on a
    machine without CUDA, or a raw input that is missing where the env
    forbids the embedded default (``--env gpu``)."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import torch

        from kexue.config import ConfigError
        from kexue.preflight import check_cuda, check_parameters, check_real_data

        inputs = set(pipeline.inputs())
        param_inputs = {n: catalog.load(n) for n in sorted(inputs)
                        if n.startswith("params:") and n in catalog}
        # every pipeline whose parameters (or a section of them) a node reads: its whole
        # top-level mapping against its Parameters dataclass
        tops = {n.removeprefix("params:").split(".")[0] for n in param_inputs}
        tops = {t: catalog.load(f"params:{t}") for t in sorted(tops) if f"params:{t}" in catalog}
        try:
            check_parameters(tops, parameter_schemas(tops))
            check_cuda(param_inputs, torch.cuda.is_available())
        except Exception:
            _end_tracking_runs()
            raise
        if "params:embedded_defaults" not in catalog:
            _end_tracking_runs()
            raise ConfigError("Parameter 'embedded_defaults' is missing, so this run cannot tell "
                              "whether the embedded synthetic data may stand in for real files. "
                              "Fix: keep `embedded_defaults: ${globals:embedded_defaults}` in "
                              "conf/base/parameters.yml (conf/<env>/globals.yml sets the value)")
        embedded = bool(catalog.load("params:embedded_defaults"))
        datasets = {n: catalog[n] for n in sorted(inputs)
                    if not n.startswith("params:") and n in catalog}
        try:
            check_real_data(inputs, param_inputs, datasets, embedded)
        except Exception:
            _end_tracking_runs()
            raise


class DistributedRankHooks:
    """Under torchrun / srun every rank runs the pipeline; only global rank 0 writes.

    On the other ranks every dataset the pipeline outputs is replaced by an in-memory dataset
    before the first node (so later nodes of that rank still read what it computed), and MLflow
    tracking is off (``settings.DISABLE_HOOKS_FOR_PLUGINS`` and :class:`MlflowTrackingHooks`).
    Training nodes join the process group through Lightning (``kexue.training.distributed``).
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from kedro.io import MemoryDataset

        from kexue.launch import launched_rank

        rank, world = launched_rank()
        if world == 1:
            return
        if rank == 0:
            logger.info("Distributed launch: rank 0 of %d writes the catalog outputs", world)
            return
        outputs = sorted(n for n in pipeline.all_outputs() if not n.startswith("params:"))
        for name in outputs:
            catalog[name] = MemoryDataset(copy_mode="assign")
        logger.info("Distributed launch: rank %d of %d keeps its %d outputs in memory (rank 0 "
                    "writes them)", rank, world, len(outputs))


class RunManifestHooks:
    """Write ``run_manifest`` (:mod:`kexue.manifest`) through the catalog at the end of every run
    (also after a failure, with ``status: failed``): run id, command, git state, parameters
    hash, the load / save version of every dataset the run touched, packages, device."""

    def __init__(self) -> None:
        from kexue.manifest import ManifestRecorder

        self._rec = ManifestRecorder()
        self._on = False

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from kexue.launch import is_rank_zero
        from kexue.tracking import git_state

        self._on = is_rank_zero() and "run_manifest" in catalog
        if self._on:
            self._rec.start(run_params, catalog, git_state())

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any, node: Any) -> None:
        if self._on:
            self._rec.touched(dataset_name, "loaded")

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        if self._on:
            self._rec.touched(dataset_name, "saved")

    def _write(self, catalog: Any, status: str) -> None:
        if self._on:
            self._on = False
            manifest = self._rec.finish(status)
            catalog.save("run_manifest", manifest)
            logger.info("Run manifest: %d datasets, parameters %s", len(manifest["datasets"]),
                        manifest["parameters_sha256"][:12])

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Any,
                           catalog: Any) -> None:
        self._write(catalog, "finished")

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any,
                          catalog: Any) -> None:
        self._write(catalog, "failed")


class ReportingHooks:
    """Before the first node of a run that includes ``reporting`` nodes (tag ``reporting``):
    register ``report_run_info`` (the report header and data versions, :mod:`kexue.reporting.
    inputs`) and register ``None`` for every report input that neither this run nor an earlier
    one wrote, so the report marks that pipeline "not run" instead of failing."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from kedro.io import MemoryDataset

        from kexue.reporting import inputs
        from kexue.tracking import git_state

        if not inputs.report_nodes(pipeline):
            return
        absent = inputs.absent_report_inputs(pipeline, catalog)
        catalog[inputs.RUN_INFO] = MemoryDataset(
            inputs.run_info(run_params, pipeline, catalog, git_state()), copy_mode="assign")
        for name in absent:
            catalog[name] = MemoryDataset(None, copy_mode="assign")
        if absent:
            logger.info("Report: %d input(s) not written by any run yet, reported as not run: "
                        "%s", len(absent), ", ".join(absent))


class TrackingStoreHooks:
    """Prepare the env's embedded SQLite MLflow store (tables, the run's experiment) under a lock
    BEFORE kedro-mlflow opens it (``tryfirst``; :mod:`kexue.io.tracking_store`): sessions that
    start at once on a fresh store raced MLflow's first-open migrations and broke the store."""

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        from kedro.config import MissingConfigException

        from kexue.io.tracking_store import prepare_store
        from kexue.launch import is_rank_zero

        if not is_rank_zero():                 # kedro-mlflow is off on the other ranks
            return
        try:
            conf = context.config_loader["mlflow"]
        except MissingConfigException:
            return
        experiment = ((conf.get("tracking") or {}).get("experiment") or {})
        kwargs = experiment.get("create_experiment_kwargs") or {}
        prepare_store((conf.get("server") or {}).get("mlflow_tracking_uri"),
                      experiment.get("name"),
                      kwargs.get("artifact_location") or str(Path(context.project_path) / "mlruns"))


class MlflowTrackingHooks:
    """Catalog-declared MLflow logging (:mod:`kexue.tracking`): artifacts, per-epoch and final
    metrics of the datasets whose ``metadata.kexue.track`` is set, and git / env tags. Runs
    inside kedro-mlflow's run (plugin hooks run before project hooks)."""

    def __init__(self) -> None:
        from kexue.launch import is_rank_zero
        from kexue.tracking import TrackingHooks

        self._impl = TrackingHooks()
        self._on = is_rank_zero()            # torchrun / srun: only global rank 0 tracks

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if self._on:
            self._impl.before_pipeline_run(run_params, pipeline, catalog)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        if self._on:
            self._impl.after_dataset_saved(dataset_name, data, node)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Any,
                           catalog: Any) -> None:
        if self._on:
            self._impl.end_runs("FINISHED")

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any,
                          catalog: Any) -> None:
        if self._on:
            self._impl.end_runs("FAILED")
