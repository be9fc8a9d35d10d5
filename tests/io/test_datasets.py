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


def _ckpt(path: Path, step: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    f = path / f"epoch=0-step={step}.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "loops": {}}, f)
    return f


def test_checkpoint_store_skips_corrupt_content_and_keeps_unreadable_files(tmp_path, monkeypatch):
    from kexue.io.checkpoints import CheckpointStore

    good = _ckpt(tmp_path, 1)
    newest = _ckpt(tmp_path, 2)
    newest.write_bytes(newest.read_bytes()[:40])              # truncated by a kill mid-write
    store = CheckpointStore(tmp_path)
    assert store.resumable() == good
    assert (tmp_path / f"{newest.name}.corrupt").exists() and not newest.exists()

    real_load = torch.load

    def denied(f, *args, **kwargs):
        if Path(f) == good:
            raise PermissionError(13, "Permission denied", str(f))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", denied)
    with pytest.raises(DatasetError, match=r"could not be read \(PermissionError.*left in place"):
        store.resumable()
    assert good.exists()                                      # a good file is never renamed


def test_one_line_decoder_numbers_lines_alike_in_every_reader():
    """LineSource, the CLUE readers and the image CSV reader share ``decode_lines``: a BOM, CRLF,
    invalid UTF-8 and in-line separators (\\x0b, U+2028, which ``str.splitlines`` would split
    at) give the same numbered lines everywhere."""
    import io

    from kexue.data.textcls import LabelSpace
    from kexue.data.textcls.records import iter_lines
    from kexue.io.lines import decode_lines

    data = "\ufeffa\r\nb\x0bc\n\xff\nd\u2028e\n".encode().replace(b"\xc3\xbf", b"\xff")
    want = [(1, "a", None), (2, "b\x0bc", None), (4, "d\u2028e", None)]
    lines = [(x.no, x.text, x.error) for x in decode_lines(io.BytesIO(data))]
    assert [t for t in lines if t[2] is None] == want
    assert lines[2][0] == 3 and lines[2][2].startswith("invalid UTF-8: invalid start byte")
    assert list(iter_lines(data)) == lines
    space = LabelSpace.from_labels_json(
        '{"label": "7", "label_desc": "x\u2028y"}\n\n{"label": "8", "label_des": "z"}\n'.encode(),
        "labels.json")                        # a raw U+2028 inside a JSON string: one line
    assert space.names == ["x\u2028y", "z"]


def test_checkpoints_of_another_fit_are_moved_aside_not_resumed(tmp_path, monkeypatch):
    """A run that raised leaves its checkpoints; next week's run with a new learning rate (or
    new data) resumed them silently and trained on with the OLD optimizer state. The project's
    own fit_classifier: a matching fit still resumes; a changed one trains from scratch exactly
    as one with an empty checkpoint folder does, and the old checkpoints survive beside it."""
    from kexue.io.checkpoints import IDENTITY_FILE, CheckpointStore
    from kexue.models.mlp import MLPConfig
    from kexue.models.mlp.training import fit_classifier
    from kexue.training.config import OptimizerConfig, TrainerConfig

    monkeypatch.setattr(CheckpointStore, "clear", lambda self: None)   # as after a crash
    g = torch.Generator().manual_seed(0)
    train = (torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g))
    cfg = MLPConfig(in_dim=6, hidden=(8,), n_classes=3)
    trainer = TrainerConfig(max_epochs=2, accelerator="cpu", enable_progress_bar=False,
                            resumable=True)
    store = CheckpointStore(tmp_path / "ckpt")

    def fit(lr: float, checkpoints=store):
        return fit_classifier(train, None, cfg, OptimizerConfig(lr=lr), trainer, 10, 0,
                              checkpoints=checkpoints)

    first = fit(1e-3)
    assert store.candidates() and (store.path / IDENTITY_FILE).is_file()
    again = fit(1e-3)                       # same fit: resumes from its last epoch, no new step
    assert not list(tmp_path.glob("ckpt.stale-*"))                  # same identity: kept
    for k, v in first.module.state_dict().items():
        assert torch.equal(again.module.state_dict()[k], v)
    changed = fit(0.5)
    fresh = fit(0.5, checkpoints=CheckpointStore(tmp_path / "empty"))   # resumable, no history
    for k, v in fresh.module.state_dict().items():
        torch.testing.assert_close(changed.module.state_dict()[k], v, rtol=0, atol=0)
    assert not torch.equal(changed.module.state_dict()["model.net.0.weight"],
                           first.module.state_dict()["model.net.0.weight"])
    stale = sorted(tmp_path.glob("ckpt.stale-*"))
    assert len(stale) == 1 and list(stale[0].glob("*.ckpt"))   # kept, not deleted
