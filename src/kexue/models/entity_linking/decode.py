"""Inference: NER span decoding and candidate scoring (``el.py``'s ``extract_items``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from kexue.models.entity_linking.batching import LinkingResources, TextItem, collate
from kexue.models.entity_linking.candidates import AliasMatcher
from kexue.models.entity_linking.module import EntityLinkingModule
from kexue.models.entity_linking.pruning import candidate_ids


def decode_spans(p_start: np.ndarray, p_end: np.ndarray, threshold: float = 0.4
                 ) -> list[tuple[int, int]]:
    """Pair every start with ``p > threshold`` with the nearest end ``j >= i`` with ``p > threshold``.

    Returns:
        ``(start, end_exclusive)`` spans in start order (nested / overlapping spans allowed).
    """
    starts = np.flatnonzero(p_start > threshold)
    ends = np.flatnonzero(p_end > threshold)
    spans = []
    for i in starts:
        k = np.searchsorted(ends, i)  # first end >= i
        if k < len(ends):
            spans.append((int(i), int(ends[k]) + 1))
    return spans


@dataclass
class LinkResult:
    """One linked mention: original-case text, offset, chosen id, its score, #candidates."""

    mention: str
    offset: int
    kb_id: str
    score: float
    n_candidates: int


class Linker:
    """Run NER then the matcher on raw texts.

    Args:
        module: Trained module (eval mode).
        resources: Encoders / caches.
        matcher: The (dictionary-pruned) alias matcher.
        links: Candidate-id pruning ``{name: ids}``.
        batch_size: Texts or pairs per forward pass.
    """

    def __init__(self, module: EntityLinkingModule, resources: LinkingResources,
                 matcher: AliasMatcher, links: Mapping[str, list[str]], batch_size: int = 128) -> None:
        self.module = module.eval()
        self.resources = resources
        self.matcher = matcher
        self.links = links
        self.batch_size = batch_size
        self.device = next(module.parameters()).device

    def _to(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in batch.items()}

    def items(self, texts: Sequence[str]) -> list[TextItem]:
        return [self.resources.text_item(t, self.matcher) for t in texts]

    def ner(self, items: Sequence[TextItem], threshold: float) -> list[list[tuple[int, int]]]:
        """Predicted mention spans per text."""
        out: list[list[tuple[int, int]]] = []
        for b in range(0, len(items), self.batch_size):
            chunk = items[b:b + self.batch_size]
            batch = collate([{"chars": it.chars, "words": it.word_ids, "pres1": it.pres1,
                              "pres2": it.pres2} for it in chunk])
            p1, p2 = self.module.ner_probs(self._to(batch))
            p1, p2 = p1.float().cpu().numpy(), p2.float().cpu().numpy()
            for i, it in enumerate(chunk):
                n = len(it.lower)
                out.append(decode_spans(p1[i, :n], p2[i, :n], threshold))
        return out

    def link(self, items: Sequence[TextItem], spans: Sequence[Sequence[tuple[int, int]]],
             threshold: float) -> list[list[LinkResult]]:
        """Score every pruned candidate of every span; keep the argmax when ``>= threshold``."""
        pairs: list[tuple[int, int, int, str]] = []  # (text index, start, end, candidate)
        for t, (it, text_spans) in enumerate(zip(items, spans)):
            for start, end in dict.fromkeys(text_spans):
                for cand in candidate_ids(it.lower[start:end], self.matcher, self.links):
                    pairs.append((t, start, end, cand))
        scores = np.zeros(len(pairs), dtype=np.float32)
        for b in range(0, len(pairs), self.batch_size):
            chunk = pairs[b:b + self.batch_size]
            batch = collate([self.resources.pair(items[t], s, e, c) for t, s, e, c in chunk])
            scores[b:b + len(chunk)] = self.module.link_probs(self._to(batch)).float().cpu().numpy()
        best: dict[tuple[int, int, int], tuple[float, str, int]] = {}
        for (t, s, e, c), score in zip(pairs, scores):
            key = (t, s, e)
            prev = best.get(key)
            n = prev[2] + 1 if prev else 1
            if prev is None or score > prev[0]:
                best[key] = (float(score), c, n)
            else:
                best[key] = (prev[0], prev[1], n)
        results: list[list[LinkResult]] = [[] for _ in items]
        for (t, s, e), (score, cand, n) in sorted(best.items()):
            if score >= threshold:
                results[t].append(LinkResult(items[t].text[s:e], s, cand, score, n))
        return results
