"""Hand features of the binary matcher, aligned with the query characters.

For a query text ``q`` (lowercased) and a candidate entity ``e``:

* ``f1[i] = 1`` iff char ``q[i]`` occurs anywhere in the description of ``e``;
* ``f2[i] = 1`` iff the jieba word covering ``q[i]`` is one of the description's jieba words;
* ``f3[i] = 1`` iff ``q[i]`` lies inside a match of one of ``e``'s short objects (len <= 10,
  longest first, as ``el.py``'s ``object_regex``).

``el.py``'s ``isin_feature`` only advances its position counter on a match, so its f1/f2 come out
as a packed prefix of ones (``[1, 1, 0, 0]`` where ``[0, 1, 0, 1]`` was meant). :func:`aligned_isin`
always advances by the unit's length: the intended, position-aligned feature.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Container, Iterable, Sequence
from typing import Any

import numpy as np

from kexue.models.entity_linking.candidates import lower_keep_length

MAX_OBJECT_LEN = 10


@functools.lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def segment(text: str) -> list[str]:
    """jieba words of ``text`` whose concatenation is exactly ``text`` (chars as a fallback)."""
    if not text:
        return []
    words = [w for w in _jieba().lcut(text, HMM=False) if w]
    if "".join(words) != text:  # never expected; keeps the char alignment guaranteed
        return list(text)
    return words


class DescriptionWords:
    """``word in DescriptionWords(text)`` iff ``word in segment(text)``, segmenting lazily.

    jieba cuts a text by splitting it on its ``re_han_default`` pattern and segmenting every
    piece on its own (losslessly), so the words of a text are the union of its pieces' words,
    and a word can only come from a piece that contains it as a substring. A membership test
    therefore segments only the pieces containing the word, each distinct piece once for all
    entities (``memo``): most of a long description is never segmented.

    Args:
        text: The (lowercased) description.
        memo: ``{piece: its jieba words}``, shared by every entity of a cache.
    """

    def __init__(self, text: str, memo: dict[str, frozenset[str]]) -> None:
        self.text = text
        self.pieces = tuple(dict.fromkeys(p for p in _jieba().re_han_default.split(text) if p))
        self.memo = memo
        self._known: dict[str, bool] = {}

    def _words(self, piece: str) -> frozenset[str]:
        hit = self.memo.get(piece)
        if hit is None:
            hit = self.memo[piece] = frozenset(w for w in _jieba().lcut(piece, HMM=False) if w)
        return hit

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        hit = self._known.get(word)
        if hit is None:
            # a word of a piece is a substring of the text: one C-level search rules out most
            # query words before any piece is looked at
            hit = self._known[word] = word in self.text and any(
                word in p and word in self._words(p) for p in self.pieces)
        return hit


def aligned_isin(units: Sequence[str], vocabulary: Container[str]) -> np.ndarray:
    """Per-char 0/1 vector: every char of a unit found in ``vocabulary`` is marked.

    One membership test per unit, spread over the unit's chars (``np.repeat``): position i
    always belongs to the unit covering char i (the reference advanced its counter only on
    matches: a packed prefix of ones).

    Args:
        units: The query as consecutive units (chars, or a ``str`` itself, or words); their
            concatenation is the query.
        vocabulary: Units of the other side.

    Returns:
        ``float32`` array of length ``len("".join(units))``, aligned with the query chars.
    """
    lengths = [len(u) for u in units]
    hits = np.fromiter(map(vocabulary.__contains__, units), dtype=bool, count=len(lengths))
    return np.repeat(hits, lengths).astype(np.float32)


def object_pattern(objects: Iterable[str], max_len: int = MAX_OBJECT_LEN) -> re.Pattern | None:
    """Alternation of the lowercased short objects, longest first (``None`` when there are none)."""
    objs = sorted({lower_keep_length(o) for o in objects if o and len(o) <= max_len},
                  key=lambda s: (-len(s), s))
    if not objs:
        return None
    return re.compile("|".join(re.escape(o) for o in objs))


def object_match(text: str, pattern: re.Pattern | None) -> np.ndarray:
    """Per-char 0/1 vector: chars covered by a (non-overlapping, leftmost) object match."""
    y = np.zeros(len(text), dtype=np.float32)
    if pattern is not None:
        for m in pattern.finditer(text):
            y[m.start():m.end()] = 1.0
    return y


class ObjectMatcher:
    """:func:`object_match` of :func:`object_pattern` without compiling a regex per entity.

    ``re`` tries the alternatives longest first, so at each position the match is the longest
    object starting there (two objects of one length cannot both match), and ``finditer``
    resumes after it: a greedy leftmost-longest scan over the object set, which this is.
    Building it costs a set; compiling the alternation cost ~0.5 ms per entity.
    """

    def __init__(self, objects: Iterable[str], max_len: int = MAX_OBJECT_LEN) -> None:
        objs = {lower_keep_length(o) for o in objects if o and len(o) <= max_len}
        self.objects = frozenset(objs)
        self.lengths = sorted({len(o) for o in objs}, reverse=True)
        self.first = frozenset(o[0] for o in objs)

    def match(self, text: str) -> np.ndarray:
        """Per-char 0/1 vector: chars covered by a (non-overlapping, leftmost-longest) match."""
        y = np.zeros(len(text), dtype=np.float32)
        if self.first.isdisjoint(text):  # no object can start anywhere (the usual case)
            return y
        i, n = 0, len(text)
        while i < n:
            step = 1
            if text[i] in self.first:
                for length in self.lengths:
                    if text[i:i + length] in self.objects:
                        y[i:i + length] = 1.0
                        step = length
                        break
            i += step
        return y


def hand_features(query: str, query_words: Sequence[str], desc_chars: frozenset[str],
                  desc_words: Container[str], pattern: re.Pattern | ObjectMatcher | None
                  ) -> np.ndarray:
    """``(len(query), 3)`` array ``[f1, f2, f3]`` for a lowercased query and one entity."""
    if sum(len(w) for w in query_words) != len(query):
        raise ValueError(f"hand_features: the words {list(query_words)} do not spell the query "
                         f"{query!r}")
    out = np.empty((len(query), 3), dtype=np.float32)
    out[:, 0] = aligned_isin(query, desc_chars)
    out[:, 1] = aligned_isin(query_words, desc_words)
    out[:, 2] = pattern.match(query) if isinstance(pattern, ObjectMatcher) else \
        object_match(query, pattern)
    return out


class EntityFeatureCache:
    """Lazily computed per-entity side information (description words, object regex).

    Args:
        descriptions: ``{subject_id: lowercased description}``.
        objects: ``{subject_id: short objects}``.
    """

    def __init__(self, descriptions: dict[str, str], objects: dict[str, Sequence[str]]) -> None:
        self.descriptions = descriptions
        self.objects = objects
        self._cache: dict[str, tuple[frozenset[str], DescriptionWords, ObjectMatcher]] = {}
        self._pieces: dict[str, frozenset[str]] = {}  # jieba words of description pieces

    def get(self, subject_id: str) -> tuple[frozenset[str], DescriptionWords, ObjectMatcher]:
        """``(description chars, description words, object matcher)`` of an entity."""
        hit = self._cache.get(subject_id)
        if hit is None:
            desc = self.descriptions.get(subject_id, "")
            hit = (frozenset(desc), DescriptionWords(desc, self._pieces),
                   ObjectMatcher(self.objects.get(subject_id, ())))
            self._cache[subject_id] = hit
        return hit

    def features(self, query: str, query_words: Sequence[str], subject_id: str) -> np.ndarray:
        """``(len(query), 3)`` hand features of ``query`` against entity ``subject_id``."""
        chars, words, pattern = self.get(subject_id)
        return hand_features(query, query_words, chars, words, pattern)


def load_word_vectors(lines: Iterable[Any], where: str = "word vectors",
                      max_words: int | None = None) -> tuple[list[str], np.ndarray]:
    """Parse word2vec text format (optional ``"<count> <dim>"`` header, then ``word v1 v2 ...``).

    Args:
        lines: :class:`kexue.io.Line` records (the ``entity_linking_word_vectors`` catalog
            entry) or plain strings.
        where: Name of the source for error messages.
        max_words: Read at most this many vectors.

    Returns:
        ``(words, vectors)`` with ``vectors`` of shape ``(len(words), dim)`` (float32).
    """
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim = None
    for no, line in enumerate(lines, start=1):
        text = line if isinstance(line, str) else line.text
        if not isinstance(line, str) and line.error:
            raise ValueError(f"{where}:{line.no}: {line.error}")
        parts = text.rstrip().split(" ")
        if no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
            continue
        if len(parts) < 2:
            continue
        vec = np.asarray(parts[1:], dtype=np.float32)
        if dim is None:
            dim = vec.shape[0]
        if vec.shape[0] != dim:
            raise ValueError(f"{where}:{no}: vector of size {vec.shape[0]}, expected {dim}")
        words.append(parts[0])
        rows.append(vec)
        if max_words is not None and len(words) >= max_words:
            break
    if not rows:
        raise ValueError(f"{where}: no word vectors found; expected lines 'word v1 v2 ...'")
    return words, np.stack(rows)


def word_ids_per_char(words: Sequence[str], word2id: dict[str, int]) -> list[int]:
    """Repeat each word's id (0 = unknown) over its chars, as ``el.py``'s ``sent2vec``."""
    out: list[int] = []
    for w in words:
        out.extend([word2id.get(w, 0)] * len(w))
    return out
