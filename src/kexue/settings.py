"""Kedro project settings.

* ``merge_strategy: soft`` so that ``conf/gpu`` overrides only the keys it names (Kedro's default
  merge replaces a whole top-level key, e.g. all of ``tricks:``).
* Exactly two layers are merged: ``base`` + one run env (``local`` by default, ``gpu`` with
  ``--env gpu``; ``conf/local`` is then not read).
* kedro-viz registers two run hooks that write ``.viz/``; they are harmless and git-ignored.
"""

from kedro.config import OmegaConfigLoader

from kexue.hooks import PreflightHooks, RunMetadataHooks, SeedHooks

HOOKS = (PreflightHooks(), SeedHooks(), RunMetadataHooks())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft", "catalog": "soft", "globals": "soft"},
}
