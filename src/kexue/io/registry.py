"""MLflow model-registry datasets: read a family's champion, register a challenger.

The registry holds one registered model per model family; each version's source is a
weights-only bundle (``bundle.pt``, the same dict ``kexue.io.TorchDataset`` stores) logged as an
artifact of the run that trained it. The serving model is the version carrying the alias
``champion``. Two datasets keep the gate's I/O in the catalog:

* :class:`ChampionDataset` (load-only): ``{"version", "run_id", "bundle"}`` of the champion, or
  ``version=None, bundle=None`` before the first promotion.
* :class:`RegistryDecisionDataset` (save-only): registers the challenger (a new version, tagged
  with the gate's decision, scores and reason) and moves the alias ONLY when the decision says
  so. Moving the alias is the last call, so a run that fails anywhere before leaves the champion
  exactly as it was. Saving is retry-safe: each version is tagged with its bundle's content
  digest (:func:`bundle_digest`), and a bundle already registered (an Airflow retry of the gate
  task after the version was created, or a bit-identical challenger) is not registered again:
  the existing version is re-tagged with this decision (``kedro_run_ids`` lists every run that
  decided on it) and the decision's alias move is applied to it.

Both use the tracking / registry URI that kedro-mlflow set (``conf/<env>/mlflow.yml``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from kedro.io import AbstractDataset, DatasetError

BUNDLE_FILE = "bundle.pt"
DIGEST_TAG = "bundle_sha256"
logger = logging.getLogger(__name__)


def bundle_digest(bundle: Any) -> str:
    """SHA-256 of a bundle's content: tensors by dtype, shape and bytes, dict keys in sorted
    order, other leaves by ``repr``. Equal for equal bundles in any process (``torch.save``'s
    bytes are not promised to be)."""
    h = hashlib.sha256()

    def walk(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            h.update(b"D%d" % len(x))
            for k in sorted(x, key=repr):
                h.update(repr(k).encode())
                walk(x[k])
        elif isinstance(x, (list, tuple)):
            h.update(b"L%d" % len(x))
            for v in x:
                walk(v)
        elif isinstance(x, (set, frozenset)):     # repr order follows PYTHONHASHSEED
            h.update(b"S%d" % len(x))
            for v in sorted(x, key=repr):
                walk(v)
        else:
            r = repr(x).encode()
            h.update(b"V%d:" % len(r) + r)

    walk(bundle)
    return h.hexdigest()


def _client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient()


class ChampionDataset(AbstractDataset[None, dict[str, Any]]):
    """Load-only view of the version of ``model_name`` that carries ``alias``."""

    def __init__(self, *, model_name: str, alias: str = "champion",
                 metadata: dict[str, Any] | None = None) -> None:
        self._name = model_name
        self._alias = alias
        self.metadata = metadata
        self._loaded: dict[str, Any] | None = None

    def load(self) -> dict[str, Any]:
        """The champion, downloaded once per catalog (a run's train and evaluate nodes both read
        it; the alias only moves in the run's last step, through RegistryDecisionDataset)."""
        if self._loaded is None:
            self._loaded = self._fetch()
        return self._loaded

    def _fetch(self) -> dict[str, Any]:
        import mlflow
        from mlflow.exceptions import MlflowException

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # logs, no TTY
        empty = {"model_name": self._name, "alias": self._alias, "version": None,
                 "run_id": None, "bundle": None}
        client = _client()
        try:
            model = client.get_registered_model(self._name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise DatasetError(_unreachable(self._name, exc)) from exc
            return empty                    # first run: no registered model yet
        if self._alias not in (getattr(model, "aliases", None) or {}):
            return empty                    # registered, but nothing promoted yet
        try:
            mv = client.get_model_version_by_alias(self._name, self._alias)
        except MlflowException as exc:      # the alias exists: any failure is a real one
            raise DatasetError(_unreachable(self._name, exc)) from exc
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{mv.source}/{BUNDLE_FILE}", dst_path=tmp)
            bundle = torch.load(path, map_location="cpu", weights_only=True)
        return {**empty, "version": str(mv.version), "run_id": mv.run_id, "bundle": bundle}

    def save(self, data: Any) -> None:
        raise DatasetError("ChampionDataset is load-only: promotion goes through "
                           "RegistryDecisionDataset")

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._name, "alias": self._alias}


def _unreachable(name: str, exc: Exception) -> str:
    return (f"The MLflow registry could not be read for model {name!r} ({exc}). The gate needs "
            "the champion to compare against, so this run stops instead of promoting the "
            "challenger unopposed. Fix: make the tracking URI reachable (conf/<env>/mlflow.yml, "
            "MLFLOW_TRACKING_URI) and re-run.")


class RegistryDecisionDataset(AbstractDataset[dict[str, Any], None]):
    """Save-only: register ``decision["bundle"]`` as a new version of ``model_name`` with the
    decision's tags, then point ``alias`` at it iff ``decision["promote"]``."""

    def __init__(self, *, model_name: str, alias: str = "champion",
                 metadata: dict[str, Any] | None = None) -> None:
        self._name = model_name
        self._alias = alias
        self.metadata = metadata

    def save(self, data: dict[str, Any]) -> None:
        import mlflow

        from kexue.io.tracking_store import store_lock

        for key in ("bundle", "promote", "tags"):
            if key not in data:
                raise DatasetError(f"RegistryDecisionDataset needs {key!r} in the decision")
        # one writer at a time per SQLite store (check, register and alias move): two retrains
        # of one family at once could otherwise both pass the champion-moved check
        with store_lock(mlflow.get_registry_uri()):
            self._save(data)

    def _save(self, data: dict[str, Any]) -> None:
        from mlflow.exceptions import MlflowException

        digest = bundle_digest(data["bundle"])
        client = _client()
        try:
            client.get_registered_model(self._name)
        except MlflowException:
            client.create_registered_model(self._name)
        existing = self._registered(client, digest)
        if data["promote"]:
            now = self._alias_version(client)
            if existing is not None and now == str(existing.version):
                logger.warning("%s: version %s, this challenger, is already the %r (a retried "
                               "gate task); nothing to do", self._name, now, self._alias)
                self._retag(client, existing, data["tags"], True)
                return
            self._check_champion_unchanged(now, data["tags"])
        if existing is not None:
            version = str(existing.version)
            logger.warning("%s: this challenger is already registered as version %s (%s %s: a "
                           "retried gate task, or a bit-identical challenger); not registering "
                           "it again, re-tagging it with this decision", self._name, version,
                           DIGEST_TAG, digest[:12])
            self._retag(client, existing, data["tags"], data["promote"])
        else:
            version = self._register(client, data, digest)
        if data["promote"]:
            client.set_registered_model_alias(self._name, self._alias, version)

    def _registered(self, client: Any, digest: str) -> Any | None:
        """The READY version already holding a bundle with this digest, if any (every page)."""
        name = self._name.replace("'", "\\'")
        query = f"name='{name}' AND tags.{DIGEST_TAG}='{digest}'"
        token = None
        while True:
            page = client.search_model_versions(query, page_token=token)
            for mv in page:
                if mv.status == "READY" and (mv.tags or {}).get(DIGEST_TAG) == digest:
                    return mv
            token = page.token
            if not token:
                return None

    def _alias_version(self, client: Any) -> str:
        """The version carrying the alias now, ``"none"`` when no version does."""
        model = client.get_registered_model(self._name)
        aliases = getattr(model, "aliases", None) or {}
        return str(aliases[self._alias]) if self._alias in aliases else "none"

    def _check_champion_unchanged(self, now: str, tags: dict[str, Any]) -> None:
        """Refuse to promote when the alias moved since the challenger was scored (another
        retrain of this family promoted in between): its win was against a former champion."""
        before = str(tags.get("champion_version_before", "none"))
        if now != before:
            raise DatasetError(
                f"{self._name}: the champion moved during this run (v{before} when the "
                f"challenger was scored, v{now} now: another retrain promoted in between), so "
                "this challenger's win is against a former champion. Nothing was registered and "
                "the champion is unchanged. Fix: re-run the retrain (it scores against the "
                "current champion); schedule one retrain per family at a time (flock).")

    def _retag(self, client: Any, mv: Any, tags: dict[str, Any], promote: bool) -> None:
        """A reused version gets the decision's tags if it is promoted now; otherwise the
        decision goes to ``last_gate_*`` tags, so a serving champion is never re-tagged
        'rejected'. ``kedro_run_ids`` lists every run that decided on it."""
        old = mv.tags or {}
        runs = [r for r in old.get("kedro_run_ids", old.get("kedro_run_id", "")).split(",") if r]
        new = {(k if promote else f"last_gate_{k}"): str(v) for k, v in tags.items()
               if str(k) != "kedro_run_id" or promote}
        run = str(tags.get("kedro_run_id", ""))
        if run and run not in runs:
            runs.append(run)
        if promote:                            # an earlier rejection's record is stale now
            for key in [k for k in old if k.startswith("last_gate_")]:
                client.delete_model_version_tag(self._name, str(mv.version), key)
        for key, value in {**new, "kedro_run_ids": ",".join(runs[-50:])}.items():  # tag size
            client.set_model_version_tag(self._name, str(mv.version), key, value)

    def _register(self, client: Any, data: dict[str, Any], digest: str) -> str:
        import mlflow

        started = mlflow.active_run() is None
        run = mlflow.start_run() if started else mlflow.active_run()
        try:
            artifact_dir = f"registry/{self._name}"
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / BUNDLE_FILE
                torch.save(data["bundle"], path)
                mlflow.log_artifact(str(path), artifact_dir)
            tags = {**{str(k): str(v) for k, v in data["tags"].items()}, DIGEST_TAG: digest}
            mv = client.create_model_version(self._name, f"{run.info.artifact_uri}/{artifact_dir}",
                                             run_id=run.info.run_id, tags=tags)
            return str(mv.version)
        finally:
            if started:
                mlflow.end_run()

    def load(self) -> None:
        raise DatasetError("RegistryDecisionDataset is save-only: read the champion through "
                           "ChampionDataset")

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._name, "alias": self._alias}
