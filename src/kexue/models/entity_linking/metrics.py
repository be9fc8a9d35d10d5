"""The CCKS2019 EL metric: micro P/R/F1 over per-text sets of (mention, offset, kb_id) triples.

``F1 = 2A / (B + C)`` with A = |pred ∩ gold|, B = |pred|, C = |gold|, summed over texts
(``el.py`` ``Evaluate``; the champion's ``link_eval``). ``NIL`` links are excluded on both sides,
duplicates inside a text count once (sets), and the offset distinguishes identical mentions.
The same function scores mention detection when items are ``(mention, offset)`` pairs.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

NIL = "NIL"


@dataclass(frozen=True)
class PRF:
    """Micro precision / recall / F1 with the raw counts."""

    precision: float
    recall: float
    f1: float
    n_pred: int
    n_gold: int
    n_correct: int

    def as_dict(self) -> dict[str, float | int]:
        return dict(precision=self.precision, recall=self.recall, f1=self.f1,
                    n_pred=self.n_pred, n_gold=self.n_gold, n_correct=self.n_correct)


def _clean(items: Iterable[tuple]) -> set[tuple]:
    """Set of items with NIL-linked triples removed (pairs are kept as they are)."""
    return {tuple(x) for x in items if not (len(x) >= 3 and str(x[2]) == NIL)}


def micro_prf(pred: Mapping[Hashable, Iterable[tuple]], gold: Mapping[Hashable, Iterable[tuple]]) -> PRF:
    """Micro P/R/F1 of per-text item sets.

    Args:
        pred: ``{text_id: items}``; items are ``(mention, offset, kb_id)`` or ``(mention, offset)``.
        gold: Same shape. Texts missing from one side count as empty sets.

    Returns:
        :class:`PRF` (0.0 where a denominator is 0).
    """
    a = b = c = 0
    for key in set(pred) | set(gold):
        p = _clean(pred.get(key, ()))
        g = _clean(gold.get(key, ()))
        a += len(p & g)
        b += len(p)
        c += len(g)
    return PRF(
        precision=a / b if b else 0.0,
        recall=a / c if c else 0.0,
        f1=2 * a / (b + c) if b + c else 0.0,
        n_pred=b,
        n_gold=c,
        n_correct=a,
    )
