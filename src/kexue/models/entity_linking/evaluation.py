"""Stage-by-stage dev evaluation and the per-entity-type confusion summary."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import pandas as pd

from kexue.models.entity_linking.metrics import NIL, PRF, micro_prf

# Su's numbers on the official data (kexue.fm/archives/6919), shown beside ours in the report.
REFERENCE = {
    "max_match_raw": "R≈0.92 P≈0.30 F1≈0.40",
    "max_match_pruned": "R 0.918 P 0.60 F1 0.70+",
    "ner_model": "F1≈0.81",
    "linking_final": "F1≈0.78 (rank 14; champion 0.80)",
}
STAGE_ITEMS = {"max_match_raw": "(mention, offset)", "max_match_pruned": "(mention, offset)",
               "ner_model": "(mention, offset)", "linking_final": "(mention, offset, kb_id)"}

Triple = tuple[str, int, str]


def mention_pairs(gold: Mapping[str, Sequence[Triple]]) -> dict[str, set[tuple[str, int]]]:
    """Non-NIL gold mentions as ``(mention, offset)`` pairs."""
    return {t: {(m, o) for m, o, k in ms if k != NIL} for t, ms in gold.items()}


def span_pairs(texts: Mapping[str, str], spans: Mapping[str, Sequence[tuple[int, int]]]
               ) -> dict[str, set[tuple[str, int]]]:
    """Predicted spans as ``(original text slice, offset)`` pairs."""
    return {t: {(texts[t][s:e], s) for s, e in sp} for t, sp in spans.items()}


def stage_table(results: Mapping[str, PRF]) -> pd.DataFrame:
    """One row per stage: P/R/F1, counts, what is scored and Su's reference anchor."""
    rows = []
    for stage, r in results.items():
        rows.append({"stage": stage, "items": STAGE_ITEMS.get(stage, ""), **r.as_dict(),
                     "reference": REFERENCE.get(stage, "")})
    return pd.DataFrame(rows, columns=["stage", "items", "precision", "recall", "f1", "n_pred",
                                       "n_gold", "n_correct", "reference"])


def confusion_by_type(gold: Mapping[str, Sequence[Triple]], pred: Mapping[str, Sequence[Triple]],
                      types: Mapping[str, str]) -> pd.DataFrame:
    """Outcome of every non-NIL gold mention, grouped by gold entity type.

    A gold mention counts once under EACH of its entity's ``|``-separated types. Outcomes:
    ``correct`` (same mention, offset and id predicted), ``wrong_entity`` (the span was linked to
    another entity), ``missed`` (the span was not predicted).

    Returns:
        Columns ``type, gold, correct, wrong_entity, missed, accuracy`` sorted by ``gold`` desc.
    """
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"gold": 0, "correct": 0,
                                                              "wrong_entity": 0, "missed": 0})
    for tid, ms in gold.items():
        predicted = {(m, o): k for m, o, k in pred.get(tid, ())}
        for m, o, k in set(ms):
            if k == NIL:
                continue
            got = predicted.get((m, o))
            outcome = "missed" if got is None else ("correct" if got == k else "wrong_entity")
            for t in (types.get(k) or "unknown").split("|"):
                counts[t]["gold"] += 1
                counts[t][outcome] += 1
    df = pd.DataFrame([{"type": t, **c} for t, c in counts.items()],
                      columns=["type", "gold", "correct", "wrong_entity", "missed"])
    df["accuracy"] = (df["correct"] / df["gold"].where(df["gold"] > 0)).fillna(0.0)
    return df.sort_values(["gold", "type"], ascending=[False, True]).reset_index(drop=True)


def evaluate_stages(texts: Mapping[str, str], gold: Mapping[str, Sequence[Triple]],
                    raw_spans: Mapping[str, Sequence[tuple[int, int]]],
                    pruned_spans: Mapping[str, Sequence[tuple[int, int]]],
                    ner_spans: Mapping[str, Sequence[tuple[int, int]]],
                    linked: Mapping[str, Sequence[Triple]]) -> dict[str, PRF]:
    """Micro P/R/F1 of each stage against the dev gold."""
    pairs = mention_pairs(gold)
    return {
        "max_match_raw": micro_prf(span_pairs(texts, raw_spans), pairs),
        "max_match_pruned": micro_prf(span_pairs(texts, pruned_spans), pairs),
        "ner_model": micro_prf(span_pairs(texts, ner_spans), pairs),
        "linking_final": micro_prf(linked, gold),
    }
