"""Project commands for ``kedro``: ``kedro runs list | show | rerun`` (:mod:`kexue.runs`).

Kedro loads ``<package>.cli.cli`` as the project's command group and, once a ``cli.py``
exists, takes ``run`` from it too: ``run`` here is Kedro's own, unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run  # noqa: F401 -- `python -m kexue` / `kedro run`

from kexue import runs as R


def _session(env: str | None, runtime_params: dict[str, Any] | None = None) -> Any:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(Path.cwd())
    return KedroSession.create(project_path=Path.cwd(), env=env, runtime_params=runtime_params)


def _show(value: Any) -> str:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value.to_string(max_rows=40)
    if isinstance(value, dict) and "state_dict" in value:
        shapes = {k: tuple(v.shape) for k, v in list(value["state_dict"].items())[:8]}
        return (f"model bundle: keys {sorted(value)}; {len(value['state_dict'])} tensors, "
                f"first: {shapes}")
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2, default=str)[:4000]
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return str(value)[:4000]


@click.group(name="kexue")
def cli() -> None:
    """kexue project commands."""


@cli.group()
def runs() -> None:
    """Earlier runs by version: list, show what one wrote, re-run pinned to its inputs."""


@runs.command("list")
@click.option("--env", "-e", default=None, help="Kedro env (gpu keeps every run's version)")
def list_(env: str | None) -> None:
    """List the runs whose manifest is stored (oldest first)."""
    with _session(env) as session:
        rows = R.list_runs(session.load_context().catalog)
    if not rows:
        click.echo("No run manifest stored yet: run `kedro run` first.")
    for r in rows:
        click.echo(f"{r['version']}  {r['status'] or '?':8}  commit {r['commit'] or '?':10}  "
                   f"params {r['parameters']}  pipelines {r['pipelines']}")


@runs.command()
@click.argument("version")
@click.argument("datasets", nargs=-1)
@click.option("--env", "-e", default=None)
def show(version: str, datasets: tuple[str, ...], env: str | None) -> None:
    """Load DATASETS (default: the run's metrics) as run VERSION ('latest' = the newest)
    wrote them."""
    with _session(env) as session:
        catalog = session.load_context().catalog
        manifest = R.manifest_of(catalog, version)
        click.echo(f"run {manifest['run_id']} ({manifest.get('status')}), pipelines "
                   f"{manifest.get('pipelines')}, commit {manifest.get('git', {}).get('git_commit')}"
                   f", parameters {manifest.get('parameters_sha256', '')[:12]}")
        for name in datasets or R.default_outputs(manifest):
            click.echo(f"\n== {name} @ {R.version_seen(manifest, name)}")
            click.echo(_show(R.load_from_run(catalog, manifest, name)))


@runs.command()
@click.argument("version")
@click.option("--env", "-e", default=None)
@click.option("--pipelines", "-p", default="", help="comma-separated (default: as that run)")
@click.option("--from-nodes", default="", help="comma-separated node names")
@click.option("--dry-run", is_flag=True, help="print the kedro run command, do not run it")
def rerun(version: str, env: str | None, pipelines: str, from_nodes: str, dry_run: bool) -> None:
    """Re-run with every free input pinned to the version run VERSION used."""
    from kedro.framework.project import pipelines as registry
    from kedro.pipeline import Pipeline

    with _session(env) as session:
        manifest = R.manifest_of(session.load_context().catalog, version)
        names = [p for p in pipelines.split(",") if p] or list(manifest.get("pipelines") or [])
        starts = [n for n in from_nodes.split(",") if n]
        pipe = sum((registry[n] for n in names), Pipeline([]))
        if starts:
            pipe = pipe.from_nodes(*starts)
        catalog = session.load_context().catalog
        pins, unpinned = R.pinnable(catalog, R.pinned_inputs(manifest, pipe.inputs()))
        for name, seen in unpinned.items():
            click.echo(f"warning: {name} (version {seen} in that run) is a catch-all dataset "
                       "that --load-versions cannot pin; the re-run reads its latest version. "
                       "Fix: declare it in conf/<env>/catalog.yml to pin it", err=True)
        click.echo(" ".join(R.rerun_command(env, names, starts, pins)))
        if not dry_run:
            session.run(pipeline_names=names, from_nodes=starts or None, load_versions=pins)
