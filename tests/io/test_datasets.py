"""kexue.io datasets: TorchDataset (versioned, weights_only) and TextLinesDataset (lazy lines)."""

from pathlib import Path

import pytest
import torch
from kedro.io import DatasetError
from kedro.io.core import Version

from kexue.io import TextLinesDataset, TorchDataset


def test_torch_dataset_round_trip(tmp_path: Path):
    ds = TorchDataset(filepath=str(tmp_path / "m.pt"))
    bundle = {"config": {"hidden": 4, "name": "mlp"}, "state_dict": {"w": torch.arange(6.0).view(2, 3)}}
    ds.save(bundle)
    loaded = ds.load()
    assert loaded["config"] == bundle["config"]
    assert torch.equal(loaded["state_dict"]["w"], bundle["state_dict"]["w"])


def test_torch_dataset_refuses_non_dict(tmp_path: Path):
    with pytest.raises(DatasetError, match="dict bundle"):
        TorchDataset(filepath=str(tmp_path / "m.pt")).save(torch.zeros(2))


def test_torch_dataset_versions_do_not_overwrite(tmp_path: Path):
    path = str(tmp_path / "m.pt")
    for i, stamp in enumerate(["2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z"]):
        TorchDataset(filepath=path, version=Version(None, stamp)).save({"i": torch.tensor(i)})
    old = TorchDataset(filepath=path, version=Version("2026-01-01T00.00.00.000Z", None)).load()
    latest = TorchDataset(filepath=path, version=Version(None, None)).load()
    assert int(old["i"]) == 0 and int(latest["i"]) == 1


def test_text_lines_reads_file_with_bom_crlf_and_bad_utf8(tmp_path: Path):
    raw = tmp_path / "x.jsonl"
    raw.write_bytes("\ufeffa\r\n".encode() + b"\xff\xfe bad\n" + "中文\n".encode())
    source = TextLinesDataset(filepath=str(raw)).load()
    lines = list(source)
    assert not source.is_default and source.path == str(raw)
    assert [(l.no, l.text) for l in lines if l.error is None] == [(1, "a"), (3, "中文")]
    assert lines[1].no == 2 and "invalid UTF-8" in lines[1].error
    assert list(source) == lines  # re-iterable


def _gen(n: int):
    return (f"line {i}" for i in range(n))


def test_text_lines_fallback_when_missing(tmp_path: Path):
    ds = TextLinesDataset(filepath=str(tmp_path / "absent"), fallback=f"{__name__}:_gen",
                          fallback_args={"n": 3})
    source = ds.load()
    assert source.is_default and source.path.startswith("<embedded:")
    assert [l.text for l in source] == ["line 0", "line 1", "line 2"]


def test_text_lines_missing_without_fallback_says_fix(tmp_path: Path):
    with pytest.raises(DatasetError, match="Fix: put the official file"):
        TextLinesDataset(filepath=str(tmp_path / "absent")).load()
