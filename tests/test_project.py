"""Project-level guarantees: registry, conventions, envs, hooks, telemetry, offline CLI."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import PROJECT_ROOT

PIPELINES = ["image_ingest", "tricks", "ccks_ingest", "entity_linking", "corpus_ingest",
             "title_generation", "vqvae", "nvae", "text_classification", "reporting"]
TRAINING_PIPELINES = ["tricks", "entity_linking", "title_generation", "vqvae", "nvae",
                      "text_classification"]
PIPELINE_DIR = PROJECT_ROOT / "src" / "kexue" / "pipelines"


@pytest.fixture(scope="module")
def registry():
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_ROOT)
    return dict(pipelines)


def _config_loader(env: str | None):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT, env=env) as session:
        return session.load_context().config_loader


def test_telemetry_is_off():
    assert (PROJECT_ROOT / ".telemetry").read_text().strip() == "consent: false"


def test_every_pipeline_is_registered_and_default_runs_all(registry):
    assert set(PIPELINES) <= set(registry)
    default_nodes = {n.name for n in registry["__default__"].nodes}
    for name in PIPELINES:
        assert {n.name for n in registry[name].nodes} <= default_nodes


def test_every_node_has_an_explicit_stable_name(registry):
    for name in PIPELINES:
        for node in registry[name].nodes:
            assert node._name, f"node {node.name} of pipeline {name} has no explicit name="


def test_one_parameters_file_and_test_folder_per_pipeline():
    for name in PIPELINES:
        assert (PROJECT_ROOT / "conf" / "base" / f"parameters_{name}.yml").is_file(), name
        assert (PROJECT_ROOT / "tests" / "pipelines" / name).is_dir(), name


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_pipelines_never_import_each_other():
    for pipe_dir in sorted(p for p in PIPELINE_DIR.iterdir() if p.is_dir() and p.name != "__pycache__"):
        for py in pipe_dir.glob("*.py"):
            for mod in _imports(py):
                if mod.startswith("kexue.pipelines."):
                    assert mod.split(".")[2] == pipe_dir.name, f"{py} imports {mod}"


FILE_IO_CALLS = {"open", "read_csv", "read_parquet", "to_csv", "to_parquet", "read_json", "to_json",
                 "savefig", "write_text", "read_text", "read_bytes", "write_bytes", "glob",
                 "rglob", "iterdir", "is_file", "is_dir", "genfromtxt", "loadtxt"}
MODULE_IO_CALLS = {"load", "save", "dump"}     # only as pd./torch./np./json./pickle./plt. calls
SRC = PROJECT_ROOT / "src" / "kexue"
# The I/O boundary: kexue/io/, every kedro AbstractDataset subclass, and what those datasets
# hand to nodes as lazy sources or call in load() (module-relative path, top-level name).
IO_BOUNDARY = {("data/images/table.py", "read_image_csv"), ("data/images/table.py", "load_embedded"),
               ("data/corpora/readers.py", "RawCorpus"),
               # decodes bytes the dataset read (PIL's Image.open on a BytesIO, no path)
               ("data/images/folder.py", "parse_image_files")}


def _is_dataset_class(node: ast.AST) -> bool:
    return isinstance(node, ast.ClassDef) and any(
        "Dataset" in ast.unparse(base) for base in node.bases)


def _file_io_offenders(py: Path, rel: str | None = None) -> list[str]:
    rel = rel or py.relative_to(SRC).as_posix()
    out = []
    for top in ast.parse(py.read_text(encoding="utf-8")).body:
        name = getattr(top, "name", "")
        if (rel, name) in IO_BOUNDARY or _is_dataset_class(top):
            continue
        for node in ast.walk(top):
            if isinstance(node, ast.Call):
                fn = node.func
                call = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                base = getattr(getattr(fn, "value", None), "id", "")
                if call in FILE_IO_CALLS or (call in MODULE_IO_CALLS and base in
                                             {"pd", "torch", "json", "plt", "np", "pickle"}):
                    out.append(f"{rel}:{node.lineno} {call}")
    return out


def test_no_file_io_outside_the_catalog_boundary():
    """Nodes AND the library code they call go through the catalog: file calls live only in
    kexue/io, dataset classes and the lazy sources they return (IO_BOUNDARY)."""
    offenders = []
    for py in sorted(SRC.rglob("*.py")):
        if py.relative_to(SRC).parts[0] == "io":
            continue
        offenders += _file_io_offenders(py)
    assert not offenders, offenders


def test_file_io_scan_catches_a_path_read(tmp_path):
    """Control: the scan flags library code that opens a path (as word vectors used to)."""
    bad = tmp_path / "probe.py"
    bad.write_text("def f(p):\n    with open(p) as h:\n        return h.read()\n"
                   "def g(p):\n    return p.read_text()\n", encoding="utf-8")
    found = _file_io_offenders(bad, "models/probe.py")
    assert [o.split(" ")[1] for o in found] == ["open", "read_text"]


def test_gpu_env_soft_merges_parameters_and_sets_gpu():
    base = _config_loader(None)["parameters"]
    gpu = _config_loader("gpu")["parameters"]
    assert gpu["seed"] == base["seed"]
    for name in TRAINING_PIPELINES:
        assert gpu[name]["trainer"]["accelerator"] == "gpu", name
        # soft merge: keys only defined in base survive under the gpu env
        assert set(base[name]) <= set(gpu[name]), name
    for name in PIPELINES:
        assert (PROJECT_ROOT / "conf" / "gpu" / f"parameters_{name}.yml").is_file(), name


def test_gpu_env_versions_every_persisted_dataset_under_its_own_root():
    base = _config_loader(None)["catalog"]
    gpu = _config_loader("gpu")["catalog"]
    persisted = {k: v for k, v in gpu.items() if isinstance(v, dict) and "filepath" in v}
    assert persisted
    for name, entry in persisted.items():
        if entry["filepath"].startswith("data/01_raw"):
            continue  # raw inputs are read-only and shared
        assert entry["filepath"].startswith("data/gpu/"), (name, entry["filepath"])
        assert entry.get("versioned") is True, name
        local = base.get(name, {})
        if "filepath" in local:
            assert not local["filepath"].startswith("data/gpu/") and not local.get("versioned"), name
    assert gpu["{default_dataset}"]["versioned"] is True  # catch-all persists in-memory outputs


def test_seed_hook_seeds_torch_and_run_id_hook_exposes_run_id():
    from kedro.io import DataCatalog

    from kexue.hooks import RunMetadataHooks, SeedHooks

    catalog = DataCatalog()
    catalog["params:seed"] = 123
    draws = []
    for _ in range(2):
        SeedHooks().before_pipeline_run({"run_id": "r1"}, None, catalog)
        draws.append(torch.rand(3))
    assert torch.equal(draws[0], draws[1])
    catalog["params:seed"] = 124
    SeedHooks().before_pipeline_run({"run_id": "r1"}, None, catalog)
    assert not torch.equal(torch.rand(3), draws[0])
    RunMetadataHooks().before_pipeline_run({"run_id": "2026-01-01T00.00.00.000Z"}, None, catalog)
    assert catalog.load("run_id") == "2026-01-01T00.00.00.000Z"


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, KEDRO_DISABLE_TELEMETRY="1", DO_NOT_TRACK="1")
    kedro = Path(sys.executable).parent / "kedro"
    return subprocess.run([str(kedro), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_kedro_registry_list_and_viz_build_work_offline(kedro_project):
    listed = _cli(["registry", "list"], kedro_project)
    assert listed.returncode == 0, listed.stderr[-2000:]
    for name in PIPELINES:
        assert name in listed.stdout
    built = _cli(["viz", "build"], kedro_project)
    assert built.returncode == 0, built.stderr[-2000:]
    assert (kedro_project / "build" / "api" / "main").is_file()
    for name in PIPELINES:
        assert (kedro_project / "build" / "api" / "pipelines" / name).is_file(), name


@pytest.mark.slow
def test_viz_build_shows_every_pipeline_dataset_and_family_tag(kedro_project):
    """The built kedro-viz API lists every registered pipeline; in the default view every node
    carries its family's tag (so the graph can be filtered per pipeline) and every dataset of
    the default pipeline is shown."""
    import json

    from kedro.framework.project import configure_project, pipelines

    built = _cli(["viz", "build"], kedro_project)
    assert built.returncode == 0, built.stderr[-2000:]
    main = json.loads((kedro_project / "build" / "api" / "main").read_text())
    configure_project("kexue")
    registered = set(pipelines)
    assert {p["id"] for p in main["pipelines"]} >= registered
    families = {n for n in registered if n != "__default__" and not n.startswith("retrain")}
    tags = {t["id"] for t in main["tags"]}
    assert families <= tags, sorted(families - tags)
    nodes = [n for n in main["nodes"] if n["type"] == "task"]
    assert nodes and all(set(n["tags"]) & families for n in nodes)
    shown = {n["name"] for n in main["nodes"] if n["type"] == "data"}
    used = {d for d in pipelines["__default__"].datasets() if not d.startswith("params:")}
    assert used - {"parameters"} <= shown | {n["name"] for n in main["nodes"]}, sorted(
        used - shown)[:10]
    # layers: kedro-viz shows them only when no node reads a later layer than it writes
    # (it silently drops them on a cycle); every persisted dataset has one
    assert main["layers"] == ["raw", "intermediate", "primary", "feature", "model_input",
                              "models", "model_output", "reporting"]
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from kedro.io import MemoryDataset

    bootstrap_project(kedro_project)
    with KedroSession.create(project_path=kedro_project) as session:
        catalog = session.load_context().catalog
    unlayered = [n["name"] for n in main["nodes"] if n["type"] == "data" and not n.get("layer")
                 and not n["name"].startswith("params:") and n["name"] != "parameters"]
    persisted = [name for name in unlayered
                 if not isinstance(catalog.get(name), (MemoryDataset, type(None)))]
    assert persisted == []
