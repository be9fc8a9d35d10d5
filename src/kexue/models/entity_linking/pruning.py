"""Behaviour modelling ("行为建模"): fit annotator habits on the TRAIN split only.

1. Dictionary pruning. Over train texts, ``pred[w]`` = #texts where ``w`` is annotated (a gold,
   non-NIL mention) and ``remove[w]`` = #texts where max-matching finds ``w`` but it is not
   annotated in that text. Drop ``w`` when ``(remove[w] + 1) / (pred[w] + 1) >= ratio`` (5).
2. Candidate-id pruning. Count gold ``kb_id``s per mention name over train; keep ids seen at least
   ``min_count`` (2) times. When the survivors intersect ``kb2id[name]`` (after step 1) they become
   the only candidates of ``name`` (``candidate_links``); otherwise every same-name entity is.

Names are compared lowercased (``normalise_alias``), as the matcher sees them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kexue.models.entity_linking.candidates import AliasMatcher, normalise_alias
from kexue.models.entity_linking.metrics import NIL


@dataclass
class PruningConfig:
    """Behaviour-modelling switches.

    Attributes:
        dictionary: Enable dictionary pruning (rule 1).
        ratio: Drop a word when ``(remove + 1) / (pred + 1) >= ratio``.
        block_pruned: Pruned words still take part in the segmentation (as in ``el.py``, where
            they stay in the Trie) instead of letting their sub-words re-appear.
        candidates: Enable candidate-id pruning (rule 2).
        min_count: Minimum train count of a (name, kb_id) link to survive rule 2.
    """

    dictionary: bool = True
    ratio: float = 5.0
    block_pruned: bool = True
    candidates: bool = True
    min_count: int = 2

    def validate(self) -> None:
        if self.ratio <= 0:
            raise ValueError("ratio must be > 0 (el.py uses 5)")
        if self.min_count < 1:
            raise ValueError("min_count must be >= 1 (el.py uses 2)")


def dictionary_counts(matcher: AliasMatcher,
                      texts: Iterable[tuple[str, Iterable[tuple[str, int, str]]]]
                      ) -> tuple[Counter, Counter]:
    """``pred`` and ``remove`` word counts over ``(text, gold mentions)`` pairs.

    Args:
        matcher: The unpruned alias matcher.
        texts: ``(text, [(mention, offset, kb_id), ...])`` per train text (NIL ignored).
    """
    pred: Counter = Counter()
    remove: Counter = Counter()
    for text, mentions in texts:
        gold_words = {normalise_alias(m) for m, _, k in mentions if str(k) != NIL}
        found = {span.alias for span in matcher.match(text)}
        pred.update(gold_words)
        remove.update(found - gold_words)
    return pred, remove


def dropped_words(pred: Mapping[str, int], remove: Mapping[str, int], ratio: float
                  ) -> dict[str, dict[str, float]]:
    """Words whose ``(remove + 1) / (pred + 1) >= ratio``, with their statistics."""
    out = {}
    for w in sorted(set(pred) | set(remove)):
        r = (remove.get(w, 0) + 1.0) / (pred.get(w, 0) + 1.0)
        if r >= ratio:
            out[w] = {"pred": int(pred.get(w, 0)), "remove": int(remove.get(w, 0)), "ratio": r}
    return out


def candidate_links(mentions: Iterable[tuple[str, str]], matcher: AliasMatcher, min_count: int
                    ) -> dict[str, list[str]]:
    """Rule 2: ``{name: ids}`` for names whose frequent gold ids intersect the dictionary.

    Args:
        mentions: ``(mention, kb_id)`` gold pairs of the train split (NIL ignored).
        matcher: The (dictionary-pruned) matcher that defines ``kb2id``.
        min_count: Minimum count for an id to survive.
    """
    counts: dict[str, Counter] = defaultdict(Counter)
    for mention, kb_id in mentions:
        if str(kb_id) != NIL:
            counts[normalise_alias(mention)][str(kb_id)] += 1
    links = {}
    for name in sorted(counts):
        kept = {i for i, c in counts[name].items() if c >= min_count}
        both = kept & set(matcher.candidates(name))
        if both:
            links[name] = sorted(both)
    return links


def fit_behaviour(matcher: AliasMatcher,
                  train: list[tuple[str, list[tuple[str, int, str]]]],
                  cfg: PruningConfig) -> dict[str, Any]:
    """Fit both rules on train texts; returns a JSON-able pruning record.

    Returns:
        ``{"config": ..., "dropped": {word: {pred, remove, ratio}}, "candidate_links":
        {name: [ids]}, "n_train_texts": int}``.
    """
    dropped: dict[str, dict[str, float]] = {}
    if cfg.dictionary:
        pred, remove = dictionary_counts(matcher, train)
        dropped = dropped_words(pred, remove, cfg.ratio)
    pruned = apply_dictionary(matcher, dropped, cfg)
    links: dict[str, list[str]] = {}
    if cfg.candidates:
        pairs = [(m, k) for _, mentions in train for m, _, k in mentions]
        links = candidate_links(pairs, pruned, cfg.min_count)
    return {
        "config": {"dictionary": cfg.dictionary, "ratio": cfg.ratio,
                   "block_pruned": cfg.block_pruned, "candidates": cfg.candidates,
                   "min_count": cfg.min_count},
        "dropped": dropped,
        "candidate_links": links,
        "n_train_texts": len(train),
    }


def apply_dictionary(matcher: AliasMatcher, dropped: Mapping[str, Any], cfg: PruningConfig
                     ) -> AliasMatcher:
    """The matcher with the dropped words pruned."""
    return matcher.without(dropped, block=cfg.block_pruned) if dropped else matcher


def candidate_ids(name: str, matcher: AliasMatcher, links: Mapping[str, list[str]]) -> list[str]:
    """Candidates of a mention name: the pruned links if any, else all same-name entities."""
    key = normalise_alias(name)
    if key in links:
        return list(links[key])
    return matcher.candidates(key)
