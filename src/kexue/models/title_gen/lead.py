"""Lead-N baseline: the title is the first N characters of the text (the standard LCSTS floor).

N is tuned on the dev split (the N with the highest mean ROUGE-L F1, ties -> the smaller N) and
the chosen N is scored on test with the same metrics as the models
(:func:`kexue.models.title_gen.metrics.generation_metrics`). Whitespace is dropped before taking
the N characters, as the metrics ignore it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kexue.models.title_gen.metrics import _chars, _f1, generation_metrics, prefix_lcs_lengths


def lead(text: str, n: int) -> str:
    """The first ``n`` non-space characters of ``text``."""
    return "".join(_chars(text))[:n]


def tune_lead_n(sources: Sequence[str], refs: Sequence[str], max_n: int) -> tuple[int, list[dict]]:
    """Pick N in ``1..max_n`` maximising mean ROUGE-L F1 of ``lead(source, N)`` vs ``refs``.

    Returns:
        (best N, one ``{"n", "rouge_l"}`` row per candidate, ROUGE-L x 100).
    """
    if max_n < 1:
        raise ValueError("title_generation.lead.max_n must be >= 1")
    if not sources:
        raise ValueError("lead-N needs dev pairs to tune N; the dev split is empty "
                         "(check corpus_ingest.split.dev)")
    # Per pair: strip once, cut to max_n, and get the LCS of every prefix with the reference
    # from one LCS table (entry n = LCS of lead(source, n) with the reference).
    pairs = []
    for s, r in zip(sources, refs):
        h, ref = _chars(s)[:max_n], _chars(r)
        pairs.append((prefix_lcs_lengths(h, ref), len(h), len(ref)))
    rows = []
    for n in range(1, max_n + 1):
        score = 100 * sum(_f1(lcs[min(n, n_h)], min(n, n_h), n_ref)
                          for lcs, n_h, n_ref in pairs) / len(sources)
        rows.append({"n": n, "rouge_l": score})
    best = max(rows, key=lambda r: (r["rouge_l"], -r["n"]))
    return int(best["n"]), rows


def lead_baseline(dev: dict[str, list], test: dict[str, list], max_n: int) -> dict[str, Any]:
    """Tune N on ``dev`` and score lead-N on ``test`` (each split: ``source``, ``target`` lists).

    Returns:
        ``{"n", "tuned_on", "dev_rouge_l", "test": generation_metrics, "dev_curve": rows}``.
    """
    n, curve = tune_lead_n(dev["source"], dev["target"], max_n)
    hyps = [lead(s, n) for s in test["source"]]
    return {"n": n, "tuned_on": "dev", "metric": "rouge_l",
            "dev_rouge_l": next(r["rouge_l"] for r in curve if r["n"] == n),
            "test": generation_metrics(hyps, [str(t) for t in test["target"]]),
            "dev_curve": curve}
