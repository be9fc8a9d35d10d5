"""The run report end to end: ``kedro run --pipelines image_ingest,tricks,reporting`` on the
project's own configuration (tiny sizes), then the HTML page checked structurally (stdlib
parser: runs everywhere) and in headless Chromium where it is installed."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

from kexue.pipelines.reporting.pipeline import SECTIONS
from tests.conftest import allow_embedded_data, copy_project, run_session

TINY = {"image_ingest": {"source": "digits", "split": {"n_val": 100, "n_test": 300}},
        "tricks": {"data": {"n_train": 100, "n_test": 50, "cpu_threads": 1},
                   "trainer": {"max_epochs": 2, "accelerator": "cpu"}}}
FAMILIES = [family for family, _, _ in SECTIONS]
RAN = {"image_ingest", "tricks"}


class Page(HTMLParser):
    """Sections (id -> data-status), images, tags seen, every href / src, table rows."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.images: list[dict[str, str]] = []
        self.tags: set[str] = set()
        self.links: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if tag == "section":
            self.sections[a["id"]] = a.get("data-status", "")
        if tag == "img":
            self.images.append(a)
        for key in ("href", "src"):
            if key in a:
                self.links.append(a[key])
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self.rows[-1].append("")
            self._cell = self.rows[-1]

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._cell = None

    def row(self, first: str) -> list[str]:
        """The first table row whose first cell is ``first``."""
        return next(r for r in self.rows if r and r[0] == first)


def _parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("report") / "project")
    run_session(project, ["image_ingest", "tricks", "reporting"], runtime_params=TINY)
    return project


@pytest.mark.slow
def test_report_covers_what_ran_and_says_not_run_for_the_rest(reported: Path) -> None:
    out = reported / "data" / "08_reporting"
    page = _parse((out / "report.html").read_text(encoding="utf-8"))
    assert set(page.sections) == {f"section-{f}" for f in FAMILIES} | {"section-rejects"}
    for family in FAMILIES:
        assert page.sections[f"section-{family}"] == ("this run" if family in RAN else
                                                      "not run"), family
    # self-contained: no script, no stylesheet link, nothing fetched from anywhere
    assert not page.tags & {"script", "link", "iframe"}
    assert all(link.startswith(("#", "data:image/png;base64,")) for link in page.links)
    # every image is a real PNG that decodes to pixels; the ones this run must show are there
    names = set()
    for img in page.images:
        png = base64.b64decode(img["src"].split(",", 1)[1])
        pixels = mpimg.imread(io.BytesIO(png), format="png")
        assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50
        names.add(img["alt"])
    assert {"A preview of each split", "Accumulation / optimizer comparison",
            "Per-epoch training curves of every run"} <= names


@pytest.mark.slow
def test_report_header_and_rejects_agree_with_the_manifest_and_the_ingest(reported: Path) -> None:
    out = reported / "data" / "08_reporting"
    html = (out / "report.html").read_text(encoding="utf-8")
    manifest = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))
    page = _parse(html)
    assert page.row("run id")[1] == manifest["run_id"]
    assert page.row("parameters sha256")[1] == manifest["parameters_sha256"]
    assert page.row("git commit")[1].startswith(manifest["git"]["git_commit"])
    ingest = json.loads((out / "image_ingest_report.json").read_text(encoding="utf-8"))
    row = page.row("image_ingest")
    assert [int(x) for x in row[2:5]] == [ingest["read"], ingest["accepted"], ingest["rejected"]]
    assert row[5] == "yes"
    # the tricks metrics table of this run is in the page, number for number
    metrics = pd.read_csv(out / "tricks_metrics.csv")
    for acc in metrics["test_acc"]:
        assert f"{100 * acc:.2f}%" in html


@pytest.mark.slow
def test_markdown_twin_links_the_same_figures(reported: Path) -> None:
    out = reported / "data" / "08_reporting"
    md = (out / "report.md").read_text(encoding="utf-8")
    page = _parse((out / "report.html").read_text(encoding="utf-8"))
    links = [line.split("](", 1)[1].rstrip(")") for line in md.splitlines()
             if line.startswith("![")]
    assert len(links) == len(page.images) > 0
    embedded = {base64.b64decode(i["src"].split(",", 1)[1]) for i in page.images}
    assert {(out / link).read_bytes() for link in links} == embedded
    assert md.count("(not run)") == len(FAMILIES) - len(RAN)


@pytest.mark.slow
def test_reporting_alone_reads_earlier_outputs_as_earlier_run(reported: Path) -> None:
    run_session(reported, ["reporting"])
    page = _parse((reported / "data" / "08_reporting" / "report.html").read_text("utf-8"))
    assert page.sections["section-tricks"] == "earlier run"
    assert page.sections["section-image_ingest"] == "earlier run"
    assert page.sections["section-vqvae"] == "not run"


@pytest.mark.slow
def test_gpu_env_versions_the_report_and_lists_the_data_versions(tmp_path: Path) -> None:
    project = allow_embedded_data(copy_project(tmp_path / "project"))
    gpu = {**TINY, "tricks": {**TINY["tricks"], "trainer": {"max_epochs": 1,
                                                           "accelerator": "cpu"}}}
    run_session(project, ["image_ingest", "tricks", "reporting"], env="gpu",
                runtime_params=gpu)
    root = project / "data" / "gpu" / "08_reporting"
    (version,) = [p.name for p in (root / "report.html").iterdir()]
    html = (root / "report.html" / version / "report.html").read_text(encoding="utf-8")
    manifest_dir = root / "run_manifest.json" / version / "run_manifest.json"
    manifest = json.loads(manifest_dir.read_text(encoding="utf-8"))
    assert manifest["run_id"] == version
    page = _parse(html)
    # every dataset this run saves is listed with the run's version, as in the manifest
    for name in ("tricks_metrics", "image_table", "tricks_curves", "report_html"):
        assert page.row(name)[1:] == ["", version], name
    for name, entry in manifest["datasets"].items():
        if entry["saved"] and name != "run_manifest":
            assert page.row(name)[2] == entry["saved"] == version, name
    # the twin's figure links resolve from its own versioned folder
    md_path = root / "report.md" / version / "report.md"
    links = [line.split("](", 1)[1].rstrip(")")
             for line in md_path.read_text(encoding="utf-8").splitlines() if line.startswith("![")]
    assert links and all((md_path.parent / link).resolve().is_file() for link in links)


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[3] / "build" / "test-artifacts"


def _chromium():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1700"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)


@pytest.mark.slow
@pytest.mark.browser
def test_report_in_headless_chromium(reported: Path) -> None:
    from selenium.webdriver.common.by import By

    page = reported / "data" / "08_reporting" / "report.html"
    driver = _chromium()
    try:
        driver.get(page.as_uri())
        ids = {s.get_attribute("id") for s in driver.find_elements(By.TAG_NAME, "section")}
        assert ids == {f"section-{f}" for f in FAMILIES} | {"section-rejects"}
        images = driver.find_elements(By.TAG_NAME, "img")
        assert images
        for img in images:     # decoded and laid out by the browser, not only present
            assert driver.execute_script("return arguments[0].complete && "
                                         "arguments[0].naturalWidth", img) > 50
            assert img.size["width"] > 50
        # the header and contents render as text a person reads
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "kexue run report" in body and "parameters sha256" in body
        assert body.count("not run") >= len(FAMILIES) - len(RAN)
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "report.png"
        assert driver.save_screenshot(str(shot))
        height, width = mpimg.imread(shot).shape[:2]
        assert width == 1280 and height > 1000
    finally:
        driver.quit()
