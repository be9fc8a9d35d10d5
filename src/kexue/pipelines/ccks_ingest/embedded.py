"""This pipeline's ingest nodes run in memory on the embedded-default generator (no catalog,
no files): the tables benchmarks and tests need at sizes the catalog does not configure."""

from __future__ import annotations

import pandas as pd

from kexue.io import TextLinesDataset
from kexue.pipelines.ccks_ingest import nodes

GENERATE = "kexue.data.ccks.generate:"


def embedded_tables(n_entities: int = 3000, n_filler: int = 1, n_train: int = 6000,
                    n_develop: int = 1000) -> dict[str, pd.DataFrame]:
    """``entities``, ``aliases``, ``texts``, ``mentions`` and ``predict`` of the generated world
    (the defaults are the catalog's embedded default) with ``n_filler`` filler sentences per
    摘要 (1 = ~150-char descriptions)."""
    world = {"n_entities": n_entities, "n_filler": n_filler}
    spec = {"kb_data": ("default_kb_lines", world),
            "train.json": ("default_train_lines", {"n_texts": n_train, **world}),
            "develop.json": ("default_develop_lines", {"n_texts": n_develop, **world})}
    src = {name: TextLinesDataset(filepath=f"/nonexistent/{name}", fallback=GENERATE + fn,
                                  fallback_args=kw).load() for name, (fn, kw) in spec.items()}
    sources = nodes.check_sources(src["kb_data"], src["train.json"], src["develop.json"])
    entities, aliases, ids, _, _ = nodes.ingest_kb(src["kb_data"], sources, {})
    texts, mentions, _, _ = nodes.ingest_train(src["train.json"], ids, sources, {})
    predict, _, _ = nodes.ingest_develop(src["develop.json"], sources)
    return {"entities": entities, "aliases": aliases, "texts": texts, "mentions": mentions,
            "predict": predict}
