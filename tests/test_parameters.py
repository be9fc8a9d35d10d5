"""Every pipeline's top-level parameters are checked: a misspelt key fails before the first node.

Without the check, ``nvae.batchsize: 200`` (for ``batch_size``) or ``entity_linking.trainr``
left the default in place without a word. The reference is the conf files themselves: each
shipped key must pass, and a hand-made near-miss of each must be refused, naming it.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from kexue.config import ConfigError
from kexue.hooks import parameter_schemas
from kexue.preflight import check_parameters

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = sorted(p.parent.name for p in (ROOT / "src/kexue/pipelines").glob("*/pipeline.py"))


def _params(env: str) -> dict:
    return OmegaConfigLoader(str(ROOT / "conf"), base_env="base", default_run_env=env)["parameters"]


def test_every_pipeline_declares_its_top_level_parameters() -> None:
    assert len(PIPELINES) == 13
    schemas = parameter_schemas(PIPELINES)
    assert sorted(schemas) == PIPELINES
    assert all(dataclasses.is_dataclass(s) for s in schemas.values())
    files = sorted(p.stem.removeprefix("parameters_")
                   for p in (ROOT / "conf/base").glob("parameters_*.yml"))
    assert files == PIPELINES                  # one parameters file per pipeline, each checked
    assert parameter_schemas(["seed", "embedded_defaults"]) == {}


@pytest.mark.parametrize("env", ["local", "gpu"], ids=["conf_local", "conf_gpu_env"])  # "gpu" alone
# as an id would mark the test as needing CUDA (conftest)
def test_the_shipped_parameters_pass(env: str) -> None:
    params = _params(env)
    check_parameters(params, parameter_schemas(params))     # raises on any unknown key


@pytest.mark.parametrize("name", PIPELINES)
def test_a_misspelt_top_level_key_is_refused_and_named(name: str) -> None:
    params = _params("local")
    key = next(iter(params[name]))
    typo = key[:-1]                                          # e.g. batch_siz, trainr -> traine
    bad = {**params, name: {**{k: v for k, v in params[name].items() if k != key},
                            typo: params[name][key]}}
    with pytest.raises(ConfigError) as err:
        check_parameters(bad, parameter_schemas(bad))
    msg = str(err.value)
    assert f"params:{name}.{typo} (did you mean '{key}'?)" in msg
    assert msg.count("\n- ") == 1                            # only that pipeline is named


def test_a_mistyped_value_and_several_pipelines_in_one_message() -> None:
    params = _params("local")
    bad = {**params, "nvae": {**params["nvae"], "batch_size": "64"},
           "tricks": {**params["tricks"], "optimiser": {}}}
    with pytest.raises(ConfigError) as err:
        check_parameters(bad, parameter_schemas(bad))
    msg = str(err.value)
    assert "'params:nvae.batch_size': expected an integer, got '64'" in msg
    assert "params:tricks.optimiser (did you mean 'optimizer'?)" in msg


def test_nodes_that_read_the_top_level_refuse_a_typo_themselves() -> None:
    """Called without a Kedro run (tests, notebooks): the node checks before any work."""
    nvae = importlib.import_module("kexue.pipelines.nvae.nodes")
    reporting = importlib.import_module("kexue.pipelines.reporting.nodes")
    params = _params("local")
    with pytest.raises(ConfigError, match=r"nvae\.batchsize \(did you mean 'batch_size'\?\)"):
        nvae.train_nvae(None, {"shape": [8, 8, 1]}, {**params["nvae"], "batchsize": 200}, 0)
    with pytest.raises(ConfigError, match=r"params:reporting\.title_sample "):
        reporting.assemble_report({}, {"title": "t", "title_sample": 3})


def test_a_kedro_run_with_a_typo_fails_before_the_first_node(kedro_project, kedro_run) -> None:
    with pytest.raises(ConfigError, match=r"params:image_ingest\.sorce \(did you mean 'source'"):
        kedro_run(kedro_project, ["image_ingest"], runtime_params={"image_ingest": {"sorce": "x"}})
    assert not [p for p in (kedro_project / "data").rglob("*") if p.is_file()]   # nothing ran


def test_the_preflight_hook_refuses_a_run_without_embedded_defaults() -> None:
    """Without the key the hook cannot know whether synthetic data may stand in: it stops."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import Node, Pipeline

    from kexue.hooks import PreflightHooks

    pipe = Pipeline([Node(lambda p: p, inputs="params:reporting", outputs="out", name="n")])
    catalog = DataCatalog({"params:reporting": MemoryDataset({"title": "t", "title_samples": 1})})
    with pytest.raises(ConfigError, match=r"'embedded_defaults' is missing.*conf/base/parameters"):
        PreflightHooks().before_pipeline_run({}, pipe, catalog)
    catalog["params:embedded_defaults"] = True
    PreflightHooks().before_pipeline_run({}, pipe, catalog)   # with it, the same run passes
    catalog["params:reporting"] = {"title": "t", "title_sampels": 1}
    with pytest.raises(ConfigError, match=r"params:reporting\.title_sampels \(did you mean"):
        PreflightHooks().before_pipeline_run({}, pipe, catalog)
