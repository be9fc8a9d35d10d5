"""Nodes of ``corpus_ingest``: raw corpus -> validated (source, title) pairs, split, char vocab.

Which corpus is read is ``params:corpus_ingest.corpus`` (``default`` = embedded generator,
``csl``, ``lcsts``, ``thucnews``); the raw inputs arrive as lazy :class:`RawCorpus` handles, so an
unselected corpus is never touched and a selected-but-missing one fails fast.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal

import pandas as pd

from kexue.config import ConfigError, build_config
from kexue.data.corpora.generate import default_title_lines
from kexue.data.corpora.readers import (
    REJECT_REASONS,
    RawCorpus,
    RawPair,
    Record,
    Reject,
    parse_pair_lines,
    parse_thucnews_article,
)
from kexue.data.corpora.schemas import SPLITS, TitlePairsSchema
from kexue.data.corpora.splits import assign_splits, split_overlap
from kexue.data.corpora.vocab import CharVocab
from kexue.data.rejects import count_by_reason, rejects_frame
from kexue.io.lines import Line

logger = logging.getLogger(__name__)
WHERE = "params:corpus_ingest"
EMBEDDED_FILE = "<embedded:kexue.data.corpora.generate>"


@dataclass
class DefaultCorpusConfig:
    """Embedded default corpus: ``n_pairs`` generated pairs from ``seed``."""

    n_pairs: int = 3000
    seed: int = 0

    def validate(self) -> None:
        if self.n_pairs < 1:
            raise ValueError("default.n_pairs must be >= 1")


@dataclass
class SplitConfig:
    """Fixed seeded split: fractions of dev and test (the rest is train), or, with ``by_file``,
    the corpus' own split: ``{split: file-name pattern}`` (fnmatch on the file's base name,
    e.g. LCSTS/CLGE ``{train: "*train*", dev: "*val*", test: "*test*"}``)."""

    dev: float = 0.1
    test: float = 0.1
    seed: int = 2019
    by_file: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if not (0.0 <= self.dev < 1 and 0.0 <= self.test < 1 and self.dev + self.test < 1):
            raise ValueError("split.dev and split.test must be in [0, 1) with dev + test < 1")
        bad = sorted(set(self.by_file) - set(SPLITS))
        if bad:
            raise ValueError(f"split.by_file has unknown split(s) {bad}; use {list(SPLITS)}")


@dataclass
class CorpusIngestConfig:
    """``params:corpus_ingest`` (see conf/base/parameters_corpus_ingest.yml for each key)."""

    corpus: Literal["default", "csl", "lcsts", "thucnews"] = "default"
    csl_layout: Literal["auto", "to_title", "title_abstract"] = "auto"
    default: DefaultCorpusConfig = field(default_factory=DefaultCorpusConfig)
    source_maxlen: int = 400
    target_maxlen: int = 64
    max_source_chars: int | None = None
    dedupe: bool = True
    limit: int | None = None
    min_freq: int = 2
    split: SplitConfig = field(default_factory=SplitConfig)
    report_max_files: int = 50

    def validate(self) -> None:
        if self.source_maxlen < 1 or self.target_maxlen < 1:
            raise ValueError("source_maxlen and target_maxlen must be >= 1")
        if self.min_freq < 1:
            raise ValueError("min_freq must be >= 1 (1 keeps every train character)")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1 or null (no limit)")
        if self.max_source_chars is not None and self.max_source_chars < 1:
            raise ValueError("max_source_chars must be >= 1 or null (no hard limit; "
                             "source_maxlen still truncates)")


def _records(cfg: CorpusIngestConfig, raws: dict[str, RawCorpus]) -> Iterator[Record]:
    """Records of the selected corpus; fails fast if its files are missing."""
    if cfg.corpus == "default":
        lines = (Line(i, text.rstrip("\n"))
                 for i, text in enumerate(default_title_lines(cfg.default.n_pairs,
                                                              cfg.default.seed), start=1))
        yield from parse_pair_lines(lines, EMBEDDED_FILE, "title_abstract")
        return
    raw = raws[cfg.corpus]
    if not raw.exists():
        raise ConfigError(
            f"Invalid parameter '{WHERE}.corpus': {cfg.corpus!r} is selected but no file matches "
            f"{raw.where}. Fix: put the {cfg.corpus} files there (see catalog entry "
            f"'{cfg.corpus}_raw'), or set corpus_ingest.corpus: default for the embedded corpus."
        )
    if cfg.corpus == "thucnews":
        for path in raw.files():
            yield parse_thucnews_article(raw.lines(path), str(path))
        return
    layout = cfg.csl_layout if cfg.corpus == "csl" else "title_abstract"
    for path in raw.files():
        yield from parse_pair_lines(raw.lines(path), str(path), layout)


def read_title_corpus(csl_raw: RawCorpus, lcsts_raw: RawCorpus, thucnews_raw: RawCorpus,
                      params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read the selected corpus, reject bad records, dedupe and truncate to the length limits.

    Args:
        csl_raw: Lazy CSL files (``to title\\tabstract\\ttitle`` or ``title\\tabstract``).
        lcsts_raw: Lazy LCSTS files (``summary\\ttext``).
        thucnews_raw: Lazy THUCNews article files (title line 1, body after).
        params: ``params:corpus_ingest``.

    Returns:
        ``title_pairs_raw`` (file, line, source, target), ``title_rejects`` (the shared table of
        :mod:`kexue.data.rejects`: file, line, level, reason code, detail, record) and read
        statistics (per-file read/accepted/rejected, truncation counts).
    """
    cfg = build_config(CorpusIngestConfig, params, where=WHERE)
    raws = {"csl": csl_raw, "lcsts": lcsts_raw, "thucnews": thucnews_raw}
    pairs: list[tuple[str, int, str, str]] = []
    rejects: list[Reject] = []
    per_file: dict[str, Counter[str]] = {}
    seen: dict[bytes, str] = {}
    truncated = Counter[str]()
    for rec in _records(cfg, raws):
        stats = per_file.setdefault(rec.file, Counter())
        stats["read"] += 1
        if isinstance(rec, RawPair):
            rec = _limit_checks(rec, cfg, seen)
        if isinstance(rec, Reject):
            rejects.append(rec)
            stats["rejected"] += 1
            continue
        source, target = rec.source, rec.target
        if len(source) > cfg.source_maxlen:
            source, truncated["source"] = source[: cfg.source_maxlen], truncated["source"] + 1
        if len(target) > cfg.target_maxlen:
            target, truncated["target"] = target[: cfg.target_maxlen], truncated["target"] + 1
        pairs.append((rec.file, rec.line, source, target))
        stats["accepted"] += 1
        if cfg.limit is not None and len(pairs) >= cfg.limit:
            logger.info("corpus_ingest: stopped after limit=%d accepted pairs", cfg.limit)
            break
    if not pairs:
        raise _nothing_accepted(cfg, raws, rejects)
    pairs_df = pd.DataFrame(pairs, columns=["file", "line", "source", "target"])
    pairs_df["line"] = pairs_df["line"].astype("int64")
    rejects_df = _rejects_frame(rejects)
    read_stats = {
        "corpus": cfg.corpus,
        "where": EMBEDDED_FILE if cfg.corpus == "default" else raws[cfg.corpus].where,
        "files": {f: {k: int(c[k]) for k in ("read", "accepted", "rejected")}
                  for f, c in per_file.items()},
        "rejects_by_reason": count_by_reason(r.reason for r in rejects),
        "truncated": {"source": int(truncated["source"]), "target": int(truncated["target"]),
                      "source_maxlen": cfg.source_maxlen, "target_maxlen": cfg.target_maxlen},
        "limit": cfg.limit,
        "dedupe": cfg.dedupe,
    }
    logger.info("corpus_ingest: %s -> %d pairs accepted, %d rejected", read_stats["where"],
                len(pairs_df), len(rejects_df))
    return pairs_df, rejects_df, read_stats


def _nothing_accepted(cfg: CorpusIngestConfig, raws: dict[str, RawCorpus],
                      rejects: list[Reject]) -> ConfigError:
    """The error when every record was rejected: the counts by reason and the likely setting."""
    where = EMBEDDED_FILE if cfg.corpus == "default" else raws[cfg.corpus].where
    by_reason = count_by_reason(r.reason for r in rejects)
    hints = {"field_count": f"'{WHERE}.csl_layout' ({cfg.csl_layout!r}) against the files' "
                            "columns (auto reads both CSL layouts)",
             "source_too_long": f"'{WHERE}.max_source_chars' ({cfg.max_source_chars})",
             "invalid_utf8": "the files' encoding (UTF-8 is required)"}
    fix = "; ".join(hints[r] for r in by_reason if r in hints) or "the files' format"
    first = "; ".join(f"{r.file}:{r.line} {r.reason} ({r.detail})" for r in rejects[:3])
    read = (f"{len(rejects)} record(s) read, every one rejected {by_reason}, e.g. {first}"
            if rejects else "its files hold no record")
    return ConfigError(f"corpus_ingest accepted no pair of corpus {cfg.corpus!r} ({where}): "
                       f"{read}. Fix: check {fix}.")


def _limit_checks(rec: RawPair, cfg: CorpusIngestConfig, seen: dict[bytes, str]) -> Record:
    """Hard length limit and exact-duplicate check (keys are 16-byte hashes: bounded memory)."""
    if cfg.max_source_chars is not None and len(rec.source) > cfg.max_source_chars:
        return Reject(rec.file, rec.line, "source_too_long", rec.record,
                      f"{len(rec.source)} chars > max_source_chars={cfg.max_source_chars}")
    if cfg.dedupe:
        key = hashlib.blake2b(f"{rec.target}\t{rec.source}".encode(), digest_size=16).digest()
        first = seen.setdefault(key, f"{rec.file}:{rec.line}")
        if first != f"{rec.file}:{rec.line}":
            return Reject(rec.file, rec.line, "duplicate", rec.record, f"of {first}")
    return rec


def _rejects_frame(rejects: list[Reject]) -> pd.DataFrame:
    return rejects_frame((r.row() for r in rejects), codes=REJECT_REASONS)


def _pair_id(corpus: str, file: str, line: int) -> str:
    digest = hashlib.sha1(f"{file}:{line}".encode()).hexdigest()[:12]
    return f"{corpus}-{digest}"


def split_title_pairs(title_pairs_raw: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Assign the fixed seeded train/dev/test split and validate the ``title_pairs`` table.

    The split is a seeded permutation of the pairs sorted by ``pair_id`` (a hash of file and
    line), so it does not depend on the order the files were read in; with ``split.by_file``
    it is the corpus' own split, read from the file names.

    Args:
        title_pairs_raw: Output of :func:`read_title_corpus`.
        params: ``params:corpus_ingest`` (``split.dev``, ``split.test``, ``split.seed``).

    Returns:
        ``title_pairs``: pair_id, source, target, split, file, line (pandera-validated).
    """
    cfg = build_config(CorpusIngestConfig, params, where=WHERE)
    df = title_pairs_raw.copy()
    df["pair_id"] = [_pair_id(cfg.corpus, f, int(n)) for f, n in zip(df["file"], df["line"])]
    if cfg.split.by_file:
        split_of = {f: _split_of_file(f, cfg.split.by_file) for f in df["file"].unique()}
        df["split"] = [split_of[f] for f in df["file"]]
    else:
        df["split"] = assign_splits(df["pair_id"].tolist(), cfg.split.dev, cfg.split.test,
                                    cfg.split.seed, groups=df["source"].tolist())
    df = df[["pair_id", "source", "target", "split", "file", "line"]].reset_index(drop=True)
    df["line"] = df["line"].astype("int64")
    return TitlePairsSchema.validate(df)


def _split_of_file(file: str, by_file: dict[str, str]) -> str:
    """The split whose ``split.by_file`` pattern matches the base name of ``file``."""
    name = PurePath(file).name
    hits = [split for split, pattern in by_file.items() if fnmatch.fnmatch(name, pattern)]
    if len(hits) != 1:
        raise ConfigError(
            f"Invalid parameter '{WHERE}.split.by_file': file {name!r} matches "
            f"{hits or 'no pattern'} of {by_file}. Fix: give each raw file exactly one "
            "matching pattern, or remove split.by_file for the seeded split.")
    return hits[0]


def build_title_vocab(title_pairs: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """Character vocabulary from the TRAIN split (sources and titles), ``min_freq`` cut-off.

    Args:
        title_pairs: The split pairs table.
        params: ``params:corpus_ingest`` (``min_freq``).

    Returns:
        ``CharVocab.to_dict()`` plus ``corpus``, ``built_on`` and ``n_train_pairs``.
    """
    cfg = build_config(CorpusIngestConfig, params, where=WHERE)
    train = title_pairs[title_pairs["split"] == "train"]
    if train.empty:
        raise ValueError("corpus_ingest: the train split is empty, cannot build a vocabulary. "
                         "Fix: provide more pairs or lower params:corpus_ingest.split.dev/test.")
    vocab = CharVocab.from_texts([*train["source"], *train["target"]], min_freq=cfg.min_freq)
    return {**vocab.to_dict(), "corpus": cfg.corpus, "built_on": "train",
            "n_train_pairs": len(train)}


def report_corpus_ingest(read_stats: dict[str, Any], title_pairs: pd.DataFrame,
                         title_rejects: pd.DataFrame, title_vocab: dict[str, Any],
                         params: dict[str, Any]) -> dict[str, Any]:
    """Summarise the ingest: counts per file, conservation, truncation, splits, vocab coverage.

    Args:
        read_stats: Statistics from :func:`read_title_corpus`.
        title_pairs: The split pairs table.
        title_rejects: The rejects table.
        title_vocab: The vocabulary dict.
        params: ``params:corpus_ingest`` (``report_max_files``).

    Returns:
        The ``corpus_ingest_report`` dict (JSON-serialisable).
    """
    cfg = build_config(CorpusIngestConfig, params, where=WHERE)
    files = read_stats["files"]
    read = sum(s["read"] for s in files.values())
    accepted, rejected = len(title_pairs), len(title_rejects)
    if read != accepted + rejected:
        raise AssertionError(f"corpus_ingest lost records: read {read} != accepted {accepted} + "
                             f"rejected {rejected}")
    vocab = CharVocab.from_dict(title_vocab)
    by_split = {s: title_pairs[title_pairs["split"] == s] for s in SPLITS}
    dev = by_split["dev"]
    unk_dev = vocab.unk_rate([*dev["source"], *dev["target"]]) if len(dev) else None
    return {
        "corpus": read_stats["corpus"],
        "where": read_stats["where"],
        "counts": {"read": read, "accepted": accepted, "rejected": rejected},
        "files": _group_files(files, cfg.report_max_files),
        "n_files": len(files),
        "rejects_by_reason": read_stats["rejects_by_reason"],
        "truncated": read_stats["truncated"],
        "splits": {s: len(d) for s, d in by_split.items()},
        "lengths": {col: {"mean": float(title_pairs[col].str.len().mean()) if accepted else 0.0,
                          "max": int(title_pairs[col].str.len().max()) if accepted else 0}
                    for col in ("source", "target")},
        "vocab": {"size": len(vocab), "min_freq": vocab.min_freq,
                  "unk_rate_dev": unk_dev,
                  "coverage_dev": None if unk_dev is None else 1.0 - unk_dev},
        "limit": read_stats["limit"],
        "dedupe": read_stats["dedupe"],
        "leakage": split_overlap(title_pairs),
    }


def _group_files(files: dict[str, dict[str, int]], max_files: int) -> dict[str, dict[str, int]]:
    """Per-file counts, or per parent folder when there are more than ``max_files`` files."""
    if len(files) <= max_files:
        return files
    grouped: dict[str, Counter[str]] = {}
    for name, stats in files.items():
        grouped.setdefault(name.rsplit("/", 1)[0] + "/*", Counter()).update(stats)
    return {k: dict(v) for k, v in grouped.items()}
