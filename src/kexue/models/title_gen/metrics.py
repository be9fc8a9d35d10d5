"""Character-level generation metrics: ROUGE-1/2/L F1, corpus BLEU, exact match.

* ROUGE-n (n = 1, 2): clipped n-gram overlap of characters; per example
  ``P = overlap / #hyp n-grams``, ``R = overlap / #ref n-grams``, ``F1 = 2PR / (P + R)``
  (0 when either side has no n-grams); averaged over examples.
* ROUGE-L: ``LCS`` of the character sequences, ``P = LCS / |hyp|``, ``R = LCS / |ref|``, F1 as above.
* BLEU: ``sacrebleu.corpus_bleu(hyps, [refs], tokenize="char")`` (4-gram, brevity penalty,
  default ``exp`` smoothing), on the 0-100 scale.
* exact match: fraction of hypotheses equal to their reference (after ``strip()``).

All scores are returned on the 0-100 scale except ``exact_match`` (a fraction in [0, 1]).
Whitespace is removed before scoring (Chinese titles have no meaningful spaces).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import sacrebleu


def _chars(text: str) -> list[str]:
    return [c for c in text if not c.isspace()]


def _ngrams(chars: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(chars[i:i + n]) for i in range(len(chars) - n + 1))


def _f1(overlap: float, n_hyp: int, n_ref: int) -> float:
    if n_hyp == 0 or n_ref == 0 or overlap == 0:
        return 0.0
    p, r = overlap / n_hyp, overlap / n_ref
    return 2 * p * r / (p + r)


def rouge_n(hyp: str, ref: str, n: int) -> float:
    """Character ROUGE-n F1 of one pair, in [0, 1]."""
    h, r = _ngrams(_chars(hyp), n), _ngrams(_chars(ref), n)
    overlap = sum((h & r).values())
    return _f1(overlap, sum(h.values()), sum(r.values()))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(|a||b|) dynamic programme)."""
    if not a or not b:
        return 0
    return prefix_lcs_lengths(a, b)[-1]


def prefix_lcs_lengths(a: Sequence[str], b: Sequence[str]) -> list[int]:
    """LCS lengths of every prefix of ``a`` against ``b`` in one dynamic-programme pass.

    Returns:
        ``out`` with ``out[i] = lcs_length(a[:i], b)`` for ``i`` in ``0..len(a)`` (row ``i``'s
        last cell of the LCS table).
    """
    out = [0]
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if ca == cb else max(prev[j], cur[j - 1]))
        prev = cur
        out.append(cur[-1])
    return out


def rouge_l(hyp: str, ref: str) -> float:
    """Character ROUGE-L F1 of one pair, in [0, 1]."""
    h, r = _chars(hyp), _chars(ref)
    return _f1(lcs_length(h, r), len(h), len(r))


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Character-level corpus BLEU (sacrebleu, ``tokenize='char'``), 0-100."""
    if not hyps:
        return 0.0
    clean = lambda s: "".join(_chars(s))  # noqa: E731
    return float(sacrebleu.corpus_bleu([clean(h) for h in hyps], [[clean(r) for r in refs]],
                                       tokenize="char").score)


def generation_metrics(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """All metrics for aligned lists of hypotheses and references.

    Returns:
        ``rouge_1``, ``rouge_2``, ``rouge_l`` (mean F1 x 100), ``bleu`` (0-100),
        ``exact_match`` (fraction) and ``n`` (number of pairs).
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses vs {len(refs)} references")
    n = len(hyps)
    if n == 0:
        return {"rouge_1": 0.0, "rouge_2": 0.0, "rouge_l": 0.0, "bleu": 0.0, "exact_match": 0.0, "n": 0}
    return {
        "rouge_1": 100 * sum(rouge_n(h, r, 1) for h, r in zip(hyps, refs)) / n,
        "rouge_2": 100 * sum(rouge_n(h, r, 2) for h, r in zip(hyps, refs)) / n,
        "rouge_l": 100 * sum(rouge_l(h, r) for h, r in zip(hyps, refs)) / n,
        "bleu": corpus_bleu(hyps, refs),
        "exact_match": sum("".join(_chars(h)) == "".join(_chars(r)) for h, r in zip(hyps, refs)) / n,
        "n": n,
    }
