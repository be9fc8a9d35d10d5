"""Operating kexue: the generated Airflow DAG and the documented cron line."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, kedro_cli

KEDRO = kedro_cli()


def _declared_datasets(project: Path) -> Callable[[str], bool]:
    """Whether a dataset name is declared in conf/base: an explicit entry or a ``{x}`` pattern."""
    names: set[str] = set()
    for f in (project / "conf" / "base").glob("catalog*.yml"):
        names |= set(yaml.safe_load(f.read_text()) or {})
    patterns = [re.compile("^" + re.sub(r"\\\{[^}]+\\\}", ".+", re.escape(n)) + "$")
                for n in names if "{" in n]
    return lambda name: name in names or any(p.match(name) for p in patterns)


def _memory_groups(project: Path, pipeline_name: str) -> list[set[str]]:
    """Independent expectation: nodes joined by UNDECLARED (in-memory) datasets, union-find."""
    from kedro.framework.project import configure_project, pipelines

    configure_project("kexue")
    pipe = pipelines[pipeline_name]
    declared = _declared_datasets(project)
    parent = {n.name: n.name for n in pipe.nodes}

    def root(x):
        while parent[x] != x:
            x = parent[x]
        return x

    producers = {out: n.name for n in pipe.nodes for out in n.outputs}
    for n in pipe.nodes:
        for inp in n.inputs:
            if inp in producers and not declared(inp) and not inp.startswith("params:"):
                parent[root(n.name)] = root(producers[inp])
    groups: dict[str, set[str]] = {}
    for name in parent:
        groups.setdefault(root(name), set()).add(name)
    return list(groups.values())


@pytest.mark.slow
def test_generated_airflow_dag_groups_memory_handoffs_and_reads_airflow_yml(kedro_project):
    out = kedro_project / "dags"
    subprocess.run([KEDRO, "airflow", "create", "--pipelines", "retrain", "--group-by",
                    "memory", "--target-dir", str(out)], cwd=kedro_project, check=True,
                   capture_output=True, env={"KEDRO_DISABLE_TELEMETRY": "1", "PATH": "/usr/bin"})
    (dag_file,) = out.glob("*.py")
    source = dag_file.read_text()
    tree = ast.parse(source)                                  # valid Python
    tasks = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "_run_kedro_node":
            kw = {k.arg: k.value for k in node.keywords}
            tasks[frozenset(ast.literal_eval(kw["node_names"]))] = True
    expected = _memory_groups(kedro_project, "retrain")
    assert set(tasks) == {frozenset(g) for g in expected}
    assert {"retrain_tricks_evaluate_node", "retrain_tricks_gate_node"} in expected
    assert any("read_images_node" in g for g in expected)     # image_ingest in front
    edges = re.findall(r'tasks\["([^"]+)"\] >> tasks\["([^"]+)"\]', source)
    # Airflow refuses a DAG with a cycle ("Cycle detected in Dag"): topological sort of the tasks
    ids = set(re.findall(r'@task\(task_id="([^"]+)"\)', source))
    indegree = {t: 0 for t in ids}
    for _, b in edges:
        indegree[b] += 1
    ready, order = [t for t, d in indegree.items() if d == 0], []
    while ready:
        t = ready.pop()
        order.append(t)
        for a, b in edges:
            if a == t:
                indegree[b] -= 1
                if indegree[b] == 0:
                    ready.append(b)
    assert len(order) == len(ids), "the generated DAG has a cycle"
    assert ("retrain-tricks-train-challenger-node",
            "retrain-tricks-evaluate-node-retrain-tricks-gate-node") in edges
    conf = yaml.safe_load((kedro_project / "conf/base/airflow.yml").read_text())
    assert f'schedule="{conf["retrain"]["schedule"]}"' in source
    assert f'retries={conf["default"]["retries"]}' in source


def cron_line() -> str:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = re.findall(r"^0 3 \* \* 1 (cd /path/to/kexue .*)$", text, flags=re.M)
    return line


@pytest.mark.slow
def test_the_readme_cron_line_works_under_env_i_and_fails_loudly(kedro_project):
    (kedro_project / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    line = cron_line().replace("/path/to/kexue", str(kedro_project))
    done = subprocess.run(["env", "-i", "/bin/sh", "-c", line], capture_output=True, text=True,
                          timeout=600)
    log = (kedro_project / "logs" / "retrain_tricks.log").read_text()
    assert done.returncode == 0, log[-3000:]
    assert done.stdout == "" and "Pipeline execution completed" in log
    assert "\x1b[" not in log and "it/s]" not in log          # no TTY: no colours, no bars
    assert (kedro_project / "mlflow.db").is_file()
    # the same line on broken input: non-zero exit, the reason in the log
    bad = kedro_project / "data" / "01_raw" / "mnist" / "mnist.csv"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("not,a,header\n1,2,3\n")
    failed = subprocess.run(["env", "-i", "/bin/sh", "-c", line], capture_output=True,
                            text=True, timeout=600)
    assert failed.returncode != 0
    assert "mnist.csv" in (kedro_project / "logs" / "retrain_tricks.log").read_text()
    # while the previous run of the family holds the lock, the line runs nothing and says so
    import fcntl

    before = (kedro_project / "logs" / "retrain_tricks.log").read_text()
    with open(kedro_project / "logs" / "retrain_tricks.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        skipped = subprocess.run(["env", "-i", "/bin/sh", "-c", line], capture_output=True,
                                 text=True, timeout=60)
    assert skipped.returncode == 75
    after = (kedro_project / "logs" / "retrain_tricks.log").read_text()
    assert after[len(before):] == ("skipped: the previous retrain_tricks run still holds "
                                   "logs/retrain_tricks.lock\n") and after.startswith(before)


def test_composed_retrain_pipeline_loads_when_requested_by_name():
    """kedro >= 1.7 imports only the requested pipeline modules; `retrain` has none of its own
    (what every Airflow task of the DAG requests), so it must still resolve."""
    from kedro.framework.project import configure_project, pipelines

    configure_project("kexue")
    pipelines.set_requested(["retrain"])
    try:
        names = {n.name for n in pipelines["retrain"].nodes}
    finally:
        pipelines.set_requested(None)
    assert {"retrain_tricks_gate_node", "retrain_entity_linking_gate_node",
            "retrain_title_generation_gate_node", "read_images_node",
            "ccks_ingest_train_node", "encode_title_pairs_node"} <= names
