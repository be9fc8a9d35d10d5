"""``kedro runs list | show | rerun`` (kexue.cli, kexue.runs): earlier runs by version."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from kexue import cli as cli_module
from kexue import runs as R
from kexue.cli import cli
from tests.pipelines.tricks.test_versioning import TINY_GPU
from tests.test_manifest import two_tricks_runs_on_other_data


def test_pinned_inputs_and_command_by_hand():
    manifest = {"datasets": {"a": {"loaded": None, "saved": "V1"}, "b": {"loaded": "V0",
                                                                         "saved": None},
                             "c": {"loaded": None, "saved": None}}}
    assert R.pinned_inputs(manifest, ["a", "b", "c", "d", "params:x"]) == {"a": "V1", "b": "V0"}
    assert R.rerun_command("gpu", ["tricks"], ["n"], {"a": "V1"}) == [
        "kedro", "run", "--env", "gpu", "--pipelines", "tricks", "--from-nodes", "n",
        "--load-versions", "a:V1"]
    with pytest.raises(KeyError, match="did not touch dataset 'z'"):
        R.version_seen(manifest, "z")


def test_latest_means_the_newest_manifest_for_show_and_rerun():
    """``latest`` (both commands) loads without a version, even where nothing is versioned."""
    class Catalog:
        calls: list = []

        def get(self, name):
            return type("Unversioned", (), {"_version": None})()

        def load(self, name, version=None):
            self.calls.append(version)
            return {"run_id": "newest"}

    catalog = Catalog()
    assert R.manifest_of(catalog, "latest") == {"run_id": "newest"}
    assert R.manifest_of(catalog, None) == {"run_id": "newest"}
    assert catalog.calls == [None, None]
    with pytest.raises(ValueError, match="not versioned"):
        R.manifest_of(catalog, "2026-01-01T00.00.00.000Z")


@pytest.mark.slow
def test_runs_cli_lists_shows_and_reruns_pinned(kedro_project, kedro_run, monkeypatch):
    root, a, b = two_tricks_runs_on_other_data(kedro_project, kedro_run)
    monkeypatch.chdir(kedro_project)
    runner = CliRunner()

    listed = runner.invoke(cli, ["runs", "list", "--env", "gpu"])
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.output.splitlines() if line[:4].isdigit()]
    assert [line.split()[0] for line in lines] == [a, b]

    shown = runner.invoke(cli, ["runs", "show", a, "tricks_metrics", "--env", "gpu"])
    assert shown.exit_code == 0, shown.output
    metrics_a = pd.read_csv(root / f"08_reporting/tricks_metrics.csv/{a}/tricks_metrics.csv")
    assert f"== tricks_metrics @ {a}" in shown.output
    for run in metrics_a["run"]:
        assert run in shown.output
    assert str(metrics_a["test_acc"].iloc[0])[:4] in shown.output

    dry = runner.invoke(cli, ["runs", "rerun", a, "--env", "gpu", "--pipelines", "tricks",
                              "--from-nodes", "select_tricks_images_node", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"images_test:{a}" in dry.output and f"images_train:{a}" in dry.output
    assert len(list((root / "08_reporting/run_manifest.json").iterdir())) == 2   # nothing ran

    session = cli_module._session        # the tests' tiny sizes (a user passes none)
    monkeypatch.setattr(cli_module, "_session", lambda env: session(env, runtime_params=TINY_GPU))
    again = runner.invoke(cli, ["runs", "rerun", a, "--env", "gpu", "--pipelines", "tricks",
                                "--from-nodes", "select_tricks_images_node"])
    assert again.exit_code == 0, again.output
    c = max(p.name for p in (root / "08_reporting/run_manifest.json").iterdir())
    assert c not in (a, b)
    manifest_c = json.loads((root / f"08_reporting/run_manifest.json/{c}/run_manifest.json")
                            .read_text())
    assert manifest_c["datasets"]["images_test"]["loaded"] == a
    test = {v: pd.read_parquet(root / f"05_model_input/tricks_test.parquet/{v}/"
                               "tricks_test.parquet") for v in (a, b, c)}
    pd.testing.assert_frame_equal(test[c], test[a])
    assert not test[b].equals(test[a])



def test_list_runs_names_an_unreadable_manifest_and_keeps_the_others(tmp_path):
    """A corrupt manifest is listed as ``unreadable`` (with a warning), not dropped silently."""
    from kedro.io import DataCatalog
    from kedro.io.core import Version
    from kedro_datasets.json import JSONDataset

    ds = JSONDataset(filepath=str(tmp_path / "run_manifest.json"), version=Version(None, None))
    catalog = DataCatalog({R.MANIFEST: ds})
    assert R.list_runs(catalog) == []                       # no run yet: nothing, no error
    for version, text in (("2026-01-01T00.00.00.000Z", json.dumps({"status": "ok"})),
                          ("2026-01-02T00.00.00.000Z", "{not json")):
        f = tmp_path / "run_manifest.json" / version / "run_manifest.json"
        f.parent.mkdir(parents=True)
        f.write_text(text)
    rows = R.list_runs(catalog)
    assert [(r["version"], r["status"]) for r in rows] == [
        ("2026-01-01T00.00.00.000Z", "ok"), ("2026-01-02T00.00.00.000Z", "unreadable")]
    plain = DataCatalog({R.MANIFEST: JSONDataset(filepath=str(tmp_path / "plain.json"))})
    assert R.list_runs(plain) == []                         # unversioned, before its first run


def test_rerun_pins_only_what_load_versions_accepts(tmp_path):
    """Kedro refuses --load-versions for runtime catch-all datasets (the re-run never started):
    explicit entries and factory patterns are pinned, the rest is reported, not passed."""
    from kedro.io import DataCatalog

    catalog = DataCatalog.from_config({
        "explicit": {"type": "pickle.PickleDataset", "filepath": str(tmp_path / "a.pkl"),
                     "versioned": True},
        "{name}_scores": {"type": "pickle.PickleDataset",
                          "filepath": str(tmp_path / "{name}.pkl"), "versioned": True}})
    ok, refused = R.pinnable(catalog, {"explicit": "V1", "tricks_scores": "V2", "loose": "V3"})
    assert ok == {"explicit": "V1", "tricks_scores": "V2"} and refused == {"loose": "V3"}
    # the reference: Kedro itself accepts the pattern-matched name and refuses the loose one
    with pytest.raises(Exception, match="'load_versions' keys \\[loose\\]"):
        DataCatalog.from_config({"{name}_scores": {"type": "pickle.PickleDataset",
                                                   "filepath": str(tmp_path / "{name}.pkl")}},
                                load_versions={"tricks_scores": "V2", "loose": "V3"})
