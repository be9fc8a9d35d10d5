"""Turn texts and (mention, candidate) pairs into padded tensor batches.

A training example is one text with its gold (non-NIL, live-dictionary) mentions. Every time it is
drawn, one gold mention and one same-name candidate (uniform over ``kb2id[name]``) are sampled,
label = candidate is the gold id (``el.py``'s ``data_generator``), so each epoch sees new pairs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from kexue.models.entity_linking.candidates import AliasMatcher, lower_keep_length
from kexue.models.entity_linking.features import EntityFeatureCache, segment, word_ids_per_char
from kexue.models.entity_linking.vocab import CharVocab


@dataclass
class TextItem:
    """One query text, lowercased, segmented and max-matched."""

    text: str
    lower: str
    words: list[str]
    chars: list[int]
    word_ids: list[int] | None
    pres1: np.ndarray
    pres2: np.ndarray
    spans: list[tuple[int, int]]


class LinkingResources:
    """Vocabularies and per-entity caches needed to encode texts and (mention, entity) pairs.

    Args:
        vocab: Char vocabulary.
        features: Per-entity description / object caches (descriptions lowercased).
        max_desc_len: Description truncation for the encoder.
        word2id: Word -> row of the fixed word-vector table (``None`` without word vectors).
    """

    def __init__(self, vocab: CharVocab, features: EntityFeatureCache, max_desc_len: int,
                 word2id: dict[str, int] | None = None) -> None:
        self.vocab = vocab
        self.features = features
        self.max_desc_len = max_desc_len
        self.word2id = word2id
        self._desc: dict[str, tuple[list[int], list[int] | None]] = {}

    def text_item(self, text: str, matcher: AliasMatcher) -> TextItem:
        """Encode a text; ``pres1``/``pres2`` mark the starts / last chars of max-match spans."""
        lower = lower_keep_length(text)
        words = segment(lower)
        pres1 = np.zeros(len(lower), dtype=np.float32)
        pres2 = np.zeros(len(lower), dtype=np.float32)
        spans = []
        for span in matcher.match(text):
            pres1[span.start] = 1.0
            pres2[span.end - 1] = 1.0
            spans.append((span.start, span.end))
        word_ids = word_ids_per_char(words, self.word2id) if self.word2id is not None else None
        return TextItem(text, lower, words, self.vocab.encode(lower), word_ids, pres1, pres2, spans)

    def description(self, subject_id: str) -> tuple[list[int], list[int] | None]:
        """Char ids (and word ids) of an entity's truncated description (at least one char)."""
        hit = self._desc.get(subject_id)
        if hit is None:
            desc = self.features.descriptions.get(subject_id, "")[: self.max_desc_len] or " "
            word_ids = None
            if self.word2id is not None:
                word_ids = word_ids_per_char(segment(desc), self.word2id)[: len(desc)]
            hit = ([max(i, 1) for i in self.vocab.encode(desc)], word_ids)
            self._desc[subject_id] = hit
        return hit

    def pair(self, item: TextItem, start: int, end: int, subject_id: str) -> dict[str, Any]:
        """Matcher inputs for mention ``item.lower[start:end]`` against entity ``subject_id``."""
        feats = self.features.features(item.lower, item.words, subject_id)
        desc, desc_words = self.description(subject_id)
        return {
            "chars": item.chars, "words": item.word_ids, "pres1": item.pres1, "pres2": item.pres2,
            "span_feats": span_features(len(item.lower), start, end, feats), "desc": desc,
            "desc_words": desc_words,
        }


def span_features(n: int, start: int, end: int, feats: np.ndarray) -> np.ndarray:
    """``(n, 4)`` ``[span 0/1, f1, f2, f3]`` of a (mention, entity) pair: the span indicator of
    chars ``start:end`` beside the ``(n, 3)`` hand features."""
    span = np.zeros((n, 1), dtype=np.float32)
    span[start:end] = 1.0
    return np.concatenate([span, feats], axis=1)


@dataclass
class TrainText:
    """A training text and its usable gold mentions ``(start, end, name, kb_id)``."""

    item: TextItem
    gold: list[tuple[int, int, str, str]]


class LinkingTrainDataset(Dataset):
    """Draws one (gold mention, random same-name candidate) pair per text and access."""

    def __init__(self, texts: Sequence[TrainText], resources: LinkingResources,
                 matcher: AliasMatcher) -> None:
        self.texts = list(texts)
        self.resources = resources
        self.matcher = matcher

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, idx: int | tuple[int, int, int]) -> dict[str, Any]:
        # (seed, epoch, index) from kexue.training.resume.EpochIndexSampler: a draw that depends
        # only on them (exact resume); a plain index draws from the global ``random`` state.
        rng: Any = random
        if isinstance(idx, tuple):
            seed, epoch, idx = idx
            rng = random.Random((seed * 1_000_003 + epoch) * 1_000_003 + idx)
        ex = self.texts[idx]
        n = len(ex.item.lower)
        s1 = np.zeros(n, dtype=np.float32)
        s2 = np.zeros(n, dtype=np.float32)
        for start, end, _, _ in ex.gold:
            s1[start] = 1.0
            s2[end - 1] = 1.0
        start, end, name, kb_id = rng.choice(ex.gold)
        candidate = rng.choice(self.matcher.candidates(name))
        out = self.resources.pair(ex.item, start, end, candidate)
        out.update(s1=s1, s2=s2, label=float(candidate == kb_id))
        return out


def pad_rows(rows: Sequence[Any], dtype: torch.dtype) -> torch.Tensor:
    """Right-pad 1-D or 2-D rows with zeros to a ``(B, L[, F])`` tensor."""
    arrays = [np.asarray(r) for r in rows]
    length = max((a.shape[0] for a in arrays), default=0)
    shape = (len(arrays), max(length, 1)) + arrays[0].shape[1:]
    out = np.zeros(shape, dtype=np.float32 if dtype.is_floating_point else np.int64)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0]] = a
    return torch.from_numpy(out).to(dtype)


_INT_KEYS = ("chars", "words", "desc", "desc_words")


def collate(examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad a list of example dicts into a batch dict (keys whose values are ``None`` dropped)."""
    batch: dict[str, torch.Tensor] = {}
    for key in examples[0]:
        values = [ex[key] for ex in examples]
        if values[0] is None:
            continue
        if key == "label":
            batch[key] = torch.tensor(values, dtype=torch.float32)
        else:
            batch[key] = pad_rows(values, torch.long if key in _INT_KEYS else torch.float32)
    return batch
