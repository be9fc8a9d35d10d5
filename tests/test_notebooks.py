"""Execute ``notebooks/*.ipynb`` headless (nbclient) against a tmp project with fresh outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TINY_TRICKS = {"image_ingest": {"source": "digits"},
               "tricks": {"data": {"n_train": 100, "n_test": 50},
                          "trainer": {"max_epochs": 2, "accelerator": "cpu"}}}


def _ensure_python3_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the ``python3`` kernelspec resolvable; install one into a tmp prefix if missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(prefix=str(tmp_path / "jupyter"), kernel_name="python3")
        monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter" / "share" / "jupyter"))


@pytest.mark.slow
def test_tricks_results_notebook(kedro_project, kedro_run, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    kedro_run(kedro_project, ["tricks"], runtime_params=TINY_TRICKS)
    _ensure_python3_kernel(tmp_path, monkeypatch)
    monkeypatch.setenv("KEXUE_PROJECT_PATH", str(kedro_project))
    monkeypatch.delenv("KEXUE_KEDRO_ENV", raising=False)
    nb = nbformat.read(NOTEBOOKS / "tricks_results.ipynb", as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    text = "\n".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert str(kedro_project) in text                       # read the tmp project, not the repo
    assert "adam_bs1_accum100" in text and "test_acc" in text
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) == 2                                 # curves + predictions
    markdown = [out["data"]["text/markdown"] for out in outputs
                if "text/markdown" in out.get("data", {})]
    assert markdown and "## Verdict" in markdown[0]
