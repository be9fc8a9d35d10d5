"""Kedro project settings.

* ``merge_strategy: soft`` so that ``conf/gpu`` overrides only the keys it names (Kedro's default
  merge replaces a whole top-level key, e.g. all of ``tricks:``).
* Exactly two layers are merged: ``base`` + one run env (``local`` by default, ``gpu`` with
  ``--env gpu``; ``conf/local`` is then not read).
* Under torchrun / srun only global rank 0 writes outputs and tracks (``DistributedRankHooks``).
* kedro-viz registers two run hooks that write ``.viz/``; they are harmless and git-ignored.
"""

import os

from kedro.config import OmegaConfigLoader

from kexue.hooks import (
    DistributedRankHooks,
    MlflowTrackingHooks,
    PreflightHooks,
    ReportingHooks,
    RunManifestHooks,
    RunMetadataHooks,
    SeedHooks,
    TrackingStoreHooks,
)
from kexue.launch import is_rank_zero

HOOKS = (TrackingStoreHooks(), PreflightHooks(), SeedHooks(), RunMetadataHooks(),
         DistributedRankHooks(), MlflowTrackingHooks(), RunManifestHooks(), ReportingHooks())

# torchrun / srun start every rank as its own `kedro run`: only global rank 0 opens an MLflow run
# or writes kedro-viz's run statistics (.viz/*.json).
# (pluggy reports the distribution as "kedro_mlflow"; both spellings are listed)
NON_ZERO_RANK_PLUGINS = ("kedro_mlflow", "kedro-mlflow", "kedro-viz", "kedro_viz")
DISABLE_HOOKS_FOR_PLUGINS = () if is_rank_zero() else NON_ZERO_RANK_PLUGINS

# The user's MLFLOW_TRACKING_URI, read once at start-up: mlflow.set_tracking_uri() exports the
# variable itself, so reading it later would carry one project's store into the next session.
_USER_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI")


def _tracking_uri(filename: str) -> str:
    if _USER_TRACKING_URI:
        return _USER_TRACKING_URI
    from kexue.io.tracking_store import project_sqlite_uri

    return project_sqlite_uri(filename)


CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft", "catalog": "soft", "globals": "soft",
                       "mlflow": "soft"},
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"],
                        "airflow": ["airflow*", "airflow/**"]},
    # ${kx.tracking_uri:mlflow.db}: $MLFLOW_TRACKING_URI (as set when the process started), else
    # an ABSOLUTE sqlite URI of that file in the project root, whatever folder kedro runs from
    # (MLflow caches stores by URI, so a relative sqlite:///mlflow.db would keep writing to the
    # first project of a process). Pure: TrackingStoreHooks prepares the env's store, under a
    # lock, before kedro-mlflow opens it (kexue.io.tracking_store).
    "custom_resolvers": {"kx.tracking_uri": lambda filename="mlflow.db": _tracking_uri(filename)},
}
