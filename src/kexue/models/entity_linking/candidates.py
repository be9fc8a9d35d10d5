"""Mention candidates by dictionary max-matching over an Aho-Corasick automaton.

Su's ``el.py`` searches a Trie for every alias hit and lets ``nlp_zero.DAG.optimal_path`` pick a
"max-matching" segmentation (hit edges score -1, uncovered chars -100). We reproduce that
objective exactly, with a lexicographic cost instead of magic numbers:

    among all segmentations of the text into alias hits and single uncovered chars, choose the one
    that (1) covers the most characters with alias hits, then (2) uses the fewest hits
    (i.e. prefers longer words).  Ties are broken deterministically: at every end position the
    longest hit is tried first and the uncovered-char edge last; the first optimum is kept.

The DP runs over the hit DAG in O(n + #hits) per text; all hits come from one
``ahocorasick.Automaton.iter`` call (C code), never from a Python loop over substrings. The
plain-Python substring loop is kept only as :func:`naive_hits` (benchmark baseline / test oracle).

Matching is case-insensitive as in ``el.py``: aliases and texts are lowercased with a
length-preserving lowercase (:func:`lower_keep_length`), so offsets always index the original
text. Book-title marks ``《》`` around aliases are stripped for matching (``el.py`` does the same).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import ahocorasick

STRIP_CHARS = "《》"


class Span(NamedTuple):
    """A matched alias: ``text[start:end]`` lowercased equals ``alias``."""

    start: int
    end: int
    alias: str


def lower_keep_length(text: str) -> str:
    """Lowercase ``text`` char by char, keeping chars whose lowercase form is longer (e.g. 'İ')."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def normalise_alias(alias: str, strip_chars: str = STRIP_CHARS) -> str:
    """The matching key of an alias: lowercased, surrounding ``《》`` and spaces removed."""
    return lower_keep_length(alias).strip().strip(strip_chars).strip()


def build_kb2id(aliases: Iterable[tuple[str, Sequence[str]]],
                strip_chars: str = STRIP_CHARS) -> dict[str, list[str]]:
    """Merge ``(alias, subject_ids)`` pairs into ``{matching key: sorted unique ids}``."""
    kb2id: dict[str, set[str]] = {}
    for alias, ids in aliases:
        key = normalise_alias(alias, strip_chars)
        if key:
            kb2id.setdefault(key, set()).update(str(i) for i in ids)
    return {k: sorted(v) for k, v in kb2id.items()}


def optimal_path(n: int, hits_by_end: Mapping[int, Sequence[int]]) -> list[tuple[int, int]]:
    """Max-matching segmentation of ``n`` chars given alias hits, as a list of hit edges.

    Args:
        n: Text length.
        hits_by_end: ``{end: [start, ...]}`` for every alias hit ``text[start:end]``; starts are
            tried in increasing order (= longest hit first).

    Returns:
        The chosen hit edges ``(start, end)`` in text order (uncovered chars are left out).
    """
    big = n + 1  # cost = uncovered * big + words: exact lexicographic order since words <= n
    cost = [0] * (n + 1)
    back = [0] * (n + 1)   # start of the edge ending here; -1 marks an uncovered char
    for j in range(1, n + 1):
        best = cost[j - 1] + big
        arg = -1
        for i in hits_by_end.get(j, ()):
            c = cost[i] + 1
            if c < best:
                best, arg = c, i
        cost[j] = best
        back[j] = arg
    path = []
    j = n
    while j > 0:
        i = back[j]
        if i < 0:
            j -= 1
        else:
            path.append((i, j))
            j = i
    path.reverse()
    return path


def naive_hits(text: str, keys: set[str] | Mapping[str, object], max_len: int) -> dict[int, list[int]]:
    """Plain-Python hit finder (loop over substrings up to ``max_len``): the baseline."""
    hits: dict[int, list[int]] = {}
    n = len(text)
    for i in range(n):
        for length in range(1, min(max_len, n - i) + 1):
            if text[i:i + length] in keys:
                hits.setdefault(i + length, []).append(i)
    for starts in hits.values():
        starts.sort()
    return hits


class AliasMatcher:
    """Alias dictionary + automaton; :meth:`match` returns the max-matching spans of a text.

    Args:
        kb2id: ``{alias: [subject_id, ...]}`` (any case; ``《》`` stripped for matching).
        blocked: Keys that take part in the segmentation but are never emitted (pruned words
            in ``el.py`` stay in the Trie, so removing them does not re-segment their text).
    """

    def __init__(self, kb2id: Mapping[str, Sequence[str]], blocked: Iterable[str] = ()) -> None:
        self.kb2id = build_kb2id(kb2id.items())
        self.blocked = frozenset(normalise_alias(w) for w in blocked)
        self.automaton = ahocorasick.Automaton()
        for key in self.kb2id:
            self.automaton.add_word(key, len(key))
        self.max_len = max((len(k) for k in self.kb2id), default=0)
        if self.kb2id:
            self.automaton.make_automaton()

    def __len__(self) -> int:
        return len(self.kb2id)

    def without(self, dropped: Iterable[str], block: bool = True) -> AliasMatcher:
        """A matcher with ``dropped`` aliases pruned (kept as blockers when ``block``)."""
        dropped = {normalise_alias(w) for w in dropped}
        if block:
            clone = object.__new__(AliasMatcher)
            clone.kb2id, clone.automaton, clone.max_len = self.kb2id, self.automaton, self.max_len
            clone.blocked = self.blocked | dropped
            return clone
        return AliasMatcher({k: v for k, v in self.kb2id.items() if k not in dropped},
                            blocked=self.blocked)

    def emitted(self, key: str) -> bool:
        """Whether ``key`` is a live dictionary word (in the KB and not pruned)."""
        return key in self.kb2id and key not in self.blocked

    def hits(self, lowered: str) -> dict[int, list[int]]:
        """All alias hits of an already lowercased text as ``{end: [start, ...]}`` (automaton)."""
        hits: dict[int, list[int]] = {}
        if not self.kb2id:
            return hits
        for last, length in self.automaton.iter(lowered):
            hits.setdefault(last + 1, []).append(last + 1 - length)
        for starts in hits.values():
            starts.sort()
        return hits

    def match(self, text: str) -> list[Span]:
        """Max-matching spans of ``text`` whose alias is live (offsets index ``text``)."""
        lowered = lower_keep_length(text)
        path = optimal_path(len(lowered), self.hits(lowered))
        return [Span(i, j, lowered[i:j]) for i, j in path if self.emitted(lowered[i:j])]

    def match_naive(self, text: str) -> list[Span]:
        """Same result as :meth:`match` with the plain-Python substring loop (baseline)."""
        lowered = lower_keep_length(text)
        path = optimal_path(len(lowered), naive_hits(lowered, self.kb2id, self.max_len))
        return [Span(i, j, lowered[i:j]) for i, j in path if self.emitted(lowered[i:j])]

    def candidates(self, name: str) -> list[str]:
        """Entity ids of a mention name (empty when unknown or pruned)."""
        key = normalise_alias(name)
        return list(self.kb2id.get(key, ())) if self.emitted(key) else []
