"""image_ingest nodes: the selected source only, rejects with file and line, counts conserved,
the fixed split (official test split kept, stratified val), the preview grid."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pandas as pd
import pytest

from kexue.config import ConfigError
from kexue.data.images.grid import tile
from kexue.data.images.idx import IdxImagesDataset
from kexue.data.images.table import ImageTableError, load_embedded
from kexue.pipelines.image_ingest.nodes import preview_images, read_images, split_images

DIGITS = {"source": "digits", "split": {"n_val": 100, "n_test": 300}}


def _read(digits_table, params=DIGITS, **others):
    sources = dict(mnist_csv=None, digits_csv=digits_table, mnist_idx=None,
                   fashion_mnist_idx=None, cifar10=None, folder=None)
    sources.update(others)
    return read_images(params=params, **sources)


@pytest.fixture(scope="module")
def digits() -> pd.DataFrame:
    return load_embedded("digits")


def test_embedded_digits_rejects_bad_rows_and_conserves_counts(digits):
    table, rejects, report = _read(digits)
    assert table.shape == (1797, 4 + 64) and table["px000"].dtype == "uint8"
    assert int(table.filter(like="px").to_numpy().max()) == 255           # 0..16 -> 0..255
    assert rejects.empty and (report["read"], report["accepted"]) == (1797, 1797)
    assert report["shape"] == [8, 8, 1] and report["files"] == ["<embedded:digits>"]
    bad = digits.copy()
    bad.loc[7, "px020"] = 99.0
    bad.loc[9, "label"] = -1
    table, rejects, report = _read(bad)
    assert (report["read"], report["accepted"], report["rejected"]) == (1797, 1795, 2)
    assert report["by_reason"] == {"bad_label": 1, "pixel_out_of_range": 1}
    assert rejects["line"].tolist() == [9, 11]                     # row index + 2
    assert rejects["detail"].iloc[0].startswith("px020='99'")
    assert 9 not in table["record"].tolist() and 11 not in table["record"].tolist()
    with pytest.raises(ImageTableError, match=r"<embedded:digits>.*missing column.*px063"):
        _read(digits.drop(columns="px063"))
    with pytest.raises(ConfigError, match="image_ingest.source"):
        _read(digits, {**DIGITS, "source": "svhn"})


def test_unavailable_source_fails_naming_the_key(tmp_path, digits):
    idx = IdxImagesDataset(path=str(tmp_path)).load()
    with pytest.raises(ConfigError, match=r"image_ingest.source='mnist_idx': No IDX images"):
        _read(digits, {"source": "mnist_idx"}, mnist_idx=idx)


def test_split_is_fixed_stratified_and_keeps_the_official_test_split(digits, tmp_path):
    table, _, report = _read(digits)
    train, val, test, full = split_images(table, report, DIGITS, seed=0)
    assert full["splits"] == {"train": 1397, "val": 100, "test": 300}
    keys = [set(zip(f["file"], f["record"], strict=True)) for f in (train, val, test)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert sum(map(len, keys)) == 1797
    assert np.abs(test["label"].value_counts(normalize=True) - 0.1).max() < 0.02
    again = split_images(table, report, DIGITS, seed=0)
    pd.testing.assert_frame_equal(again[2], test)
    # an IDX source: the t10k file IS the test split, n_test is ignored
    rng = np.random.default_rng(1)
    for prefix, n in (("train", 40), ("t10k", 20)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = np.arange(n) % 10
        (tmp_path / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">iiii", 2051, n, 28, 28) + x.tobytes()))
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">ii", 2049, n) + y.astype(np.uint8).tobytes())
    params = {"source": "mnist_idx", "split": {"n_val": 10, "n_test": 999}}
    table, rejects, report = _read(None, params, mnist_idx=IdxImagesDataset(
        path=str(tmp_path)).load())
    train, val, test, full = split_images(table, report, params, seed=0)
    assert full["splits"] == {"train": 30, "val": 10, "test": 20}
    assert set(test["file"]) == {"t10k-images-idx3-ubyte.gz"}
    assert set(val["file"]) == {"train-images-idx3-ubyte.gz"}
    with pytest.raises(ConfigError, match=r"image_ingest.split.n_val"):
        split_images(table, report, {**params, "split": {"n_val": 40}}, seed=0)


def test_preview_grid_and_tile(digits):
    table, _, report = _read(digits)
    train, _, _, full = split_images(table, report, DIGITS, seed=0)
    fig = preview_images(train, full, {**DIGITS, "preview": 10})
    assert fig.axes[0].images[0].get_array().shape == (16, 64)        # 2 rows x 8 cols of 8x8
    x = np.arange(3 * 2 * 2 * 1, dtype=np.uint8).reshape(3, 2, 2, 1)
    grid = tile(x, cols=2)
    assert grid.shape == (4, 4, 1) and np.array_equal(grid[2:, :2], x[2])
    assert not grid[2:, 2:].any()
