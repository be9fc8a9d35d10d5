"""Report sections and the 'not run' inputs, by hand."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline

from kexue.reporting import families, render
from kexue.reporting.inputs import absent_report_inputs
from kexue.reporting.section import section, status_of

REJECTS = pd.DataFrame({"file": ["a", "a", "b"], "line": [3, 9, 1],
                        "reason": ["bad_json", "bad_json", "empty_text"], "detail": [""] * 3})


@pytest.mark.parametrize("report", [
    {"totals": {"read": 10, "accepted": 7, "rejected": 3}, "source": "embedded default"},  # ccks
    {"counts": {"read": 10, "accepted": 7, "rejected": 3}, "corpus": "lcsts"},             # corpus
    {"read": 10, "accepted": 7, "rejected": 3, "source": "mnist"},                         # images
    {"splits": {"train": {"read": 6, "accepted": 5, "rejected": 1},                        # textcls
                "dev": {"read": 4, "accepted": 2, "rejected": 2}}, "task": "tnews"},
])
def test_ingest_counts_of_every_report_layout(report):
    c = families.ingest_counts(report, REJECTS)
    assert (c["read"], c["accepted"], c["rejected"]) == (10, 7, 3)
    assert c["by_reason"] == {"bad_json": 2, "empty_text": 1}
    row = render.rejects_rows([{"key": "x", "ingest": c}])[0]
    assert row[2:6] == [10, 7, 3, "yes"] and row[6] == "bad_json: 2, empty_text: 1"


def test_a_broken_count_is_flagged_not_hidden():
    c = {"read": 10, "accepted": 7, "rejected": 2, "by_reason": {}, "source": ""}
    assert render.rejects_rows([{"key": "x", "ingest": c}])[0][5] == "NO"


def test_status_and_section_validation():
    run = {"produced": ["tricks_metrics"]}
    assert status_of(None, "tricks_metrics", run) == "not run"
    assert status_of(pd.DataFrame({"a": [1]}), "tricks_metrics", run) == "this run"
    assert status_of({"a": 1}, "vqvae_metrics", run) == "earlier run"
    with pytest.raises(ValueError, match="status"):
        section("k", "t", "done")
    s = families.tricks(run, None, None, None, None)
    assert s["status"] == "not run" and "kedro run --pipelines tricks" in s["blocks"][0]["text"]


def test_only_absent_inputs_that_this_run_does_not_write_are_reported_empty(tmp_path):
    from kedro_datasets.json import JSONDataset

    on_disk = JSONDataset(filepath=str(tmp_path / "old.json"))
    on_disk.save({"x": 1})
    catalog = DataCatalog({"old": on_disk, "missing": JSONDataset(
        filepath=str(tmp_path / "missing.json")), "made": JSONDataset(
        filepath=str(tmp_path / "made.json")), "src": MemoryDataset(1)})
    pipe = Pipeline([Node(lambda x: x, "src", "made", name="produce"),
                     Node(lambda a, b, c, p: 0, ["made", "old", "missing", "params:x"], "out",
                          name="report_x", tags=["reporting"])])
    assert absent_report_inputs(pipe, catalog) == ["missing"]
    assert absent_report_inputs(pipe.only_nodes("produce"), catalog) == []  # no report nodes


def test_markdown_twin_demotes_family_headings_and_escapes_cells():
    s = section("k", "Title", "this run", [{"kind": "markdown", "text": "# Family\n## Sub\n#tag"},
                                            {"kind": "table", "caption": "c", "columns": ["a"],
                                             "rows": [["x|y"]]}])
    md = render.to_markdown({"run_id": "r"}, [s])
    assert "\n### Family\n#### Sub\n#tag\n" in md and "| x\\|y |" in md
    html = render.to_html({"run_id": "r"}, [s])
    assert "<h3>Family</h3>" in html and "<h1>Family" not in html
