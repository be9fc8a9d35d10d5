"""Markdown report of an entity-linking run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def _table(df: pd.DataFrame, floats: tuple[str, ...] = ()) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [f"{v:.4f}" if c in floats else str(v) for c, v in zip(cols, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_report(metrics: pd.DataFrame, confusion: pd.DataFrame, pruning: Mapping[str, Any],
                  train_summary: Mapping[str, Any], params: Mapping[str, Any], run_id: str,
                  top: int = 15) -> str:
    """Render the report (stage table with Su's anchors, pruning, training, confusion)."""
    dropped = pruning.get("dropped", {})
    worst = sorted(dropped.items(), key=lambda kv: (-kv[1]["remove"], kv[0]))[:top]
    links = pruning.get("candidate_links", {})
    model = params.get("model", {})
    trainer = params.get("trainer", {})
    parts = [
        "# Entity linking (CCKS2019, kexue.fm/archives/6919)",
        "",
        f"Kedro run id: `{run_id}`",
        "",
        "## Dev metrics by stage",
        "",
        "Micro P/R/F1 over per-text sets (F1 = 2A/(B+C)), NIL excluded. Mention stages score "
        "(mention, offset) pairs; the final stage scores (mention, offset, kb_id) triples. "
        "`reference` = Su's numbers on the official data (ours run on whatever data the ingest "
        "read; the embedded default is a small synthetic world, so the numbers are not comparable).",
        "",
        _table(metrics, floats=("precision", "recall", "f1")),
        "",
        "## Behaviour modelling (fitted on the train split only)",
        "",
        f"- settings: `{pruning.get('config')}`; train texts: {pruning.get('n_train_texts')}",
        f"- dictionary pruning dropped {len(dropped)} words "
        "(rule: (remove+1)/(pred+1) >= ratio); most often un-annotated:",
        "",
    ]
    if worst:
        parts.append(_table(pd.DataFrame([{"word": w, **s} for w, s in worst]), floats=("ratio",)))
    else:
        parts.append("(none)")
    parts += [
        "",
        f"- candidate-id pruning: {len(links)} names restricted to their frequent gold ids "
        f"(mean {sum(map(len, links.values())) / max(1, len(links)):.2f} ids per restricted name)",
        "",
        "## Training",
        "",
        f"- model: `{model}`",
        f"- trainer: `{trainer}`; optimizer: `{params.get('optimizer', {})}`; "
        f"adversarial: `{params.get('adversarial', {})}`; ema: `{params.get('ema', {})}`",
        f"- summary: `{dict(train_summary)}`",
        "",
        "## Confusion by gold entity type (dev, final linking)",
        "",
        "A gold mention counts under each of its entity's types. `wrong_entity` = the span was "
        "linked to another entity (usually a same-name one); `missed` = span not predicted.",
        "",
        _table(confusion.head(30), floats=("accuracy",)) if len(confusion) else "(no gold mentions)",
        "",
    ]
    return "\n".join(parts)
