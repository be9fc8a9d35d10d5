"""Inference: NER span decoding and candidate scoring (``el.py``'s ``extract_items``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from kexue.models.entity_linking.batching import (
    LinkingResources,
    TextItem,
    collate,
    pad_rows,
    span_features,
)
from kexue.models.entity_linking.candidates import AliasMatcher
from kexue.models.entity_linking.config import DESCRIPTION_CACHE_MIB
from kexue.models.entity_linking.description_cache import DescriptionCache
from kexue.models.entity_linking.inference import (
    pad_states,
    score_encoded,
    to_device,
)
from kexue.models.entity_linking.module import EntityLinkingModule
from kexue.models.entity_linking.pruning import candidate_ids
from kexue.progress import track


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


Pair = tuple[int, int, int, str]  # (text index, start, end, candidate id)


def candidate_pairs(items: Sequence[TextItem], spans: Sequence[Sequence[tuple[int, int]]],
                    matcher: AliasMatcher, links: Mapping[str, list[str]]) -> list[Pair]:
    """Every (text, unique span, pruned candidate), in text, span and candidate order."""
    pairs: list[Pair] = []
    for t, (it, text_spans) in enumerate(zip(items, spans)):
        for start, end in dict.fromkeys(text_spans):
            for cand in candidate_ids(it.lower[start:end], matcher, links):
                pairs.append((t, start, end, cand))
    return pairs


def best_per_span(items: Sequence[TextItem], pairs: Sequence[Pair], scores: np.ndarray,
                  threshold: float) -> list[list[LinkResult]]:
    """Per text, the best candidate of each span (first of equal scores) when ``>= threshold``."""
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


class Linker:
    """Run NER then the matcher on raw texts.

    :meth:`predict` (and :meth:`link`) encode each text once and each candidate description
    once per model (:class:`~kexue.models.entity_linking.description_cache.DescriptionCache`, kept
    across calls and dropped when the weights change); :meth:`link_per_pair` is the original
    path that re-encodes text and description for every pair (the reference of the tests and
    of ``bench/bench_linking.py``).

    Args:
        module: Trained module (eval mode).
        resources: Encoders / caches.
        matcher: The (dictionary-pruned) alias matcher.
        links: Candidate-id pruning ``{name: ids}``.
        batch_size: Texts or pairs per forward pass.
        cache_bytes: Memory budget of the encoded-description cache.
    """

    def __init__(self, module: EntityLinkingModule, resources: LinkingResources,
                 matcher: AliasMatcher, links: Mapping[str, list[str]], batch_size: int = 128,
                 cache_bytes: int = DESCRIPTION_CACHE_MIB * 2**20) -> None:
        self.module = module.eval()
        self.resources = resources
        self.matcher = matcher
        self.links = links
        self.batch_size = batch_size
        self.device = next(module.parameters()).device
        self.descriptions = DescriptionCache(module.net, resources.description,
                                             resources.max_desc_len, batch_size, cache_bytes)

    def _to(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return to_device(batch, self.device)

    def items(self, texts: Sequence[str]) -> list[TextItem]:
        return [self.resources.text_item(t, self.matcher) for t in texts]

    def ner(self, items: Sequence[TextItem], threshold: float) -> list[list[tuple[int, int]]]:
        """Predicted mention spans per text."""
        return self._encode_texts(items, threshold, keep_states=False)[0]

    @torch.no_grad()
    def _encode_texts(self, items: Sequence[TextItem], threshold: float | None,
                      keep_states: bool = True
                      ) -> tuple[list[list[tuple[int, int]]], torch.Tensor | None]:
        """NER spans per text (none decoded when ``threshold`` is None) and the padded BiLSTM
        states ``(T, L_max, 2H)`` on the device (None unless ``keep_states``).

        The probabilities of all batches are copied to the host after the loop (one wait).
        """
        probs, states = [], []
        for b in track(range(0, len(items), self.batch_size), "entity linking: NER",
                       unit=" batches"):
            chunk = items[b:b + self.batch_size]
            batch = self._to(collate([{"chars": it.chars, "words": it.word_ids,
                                       "pres1": it.pres1, "pres2": it.pres2} for it in chunk]))
            lengths = torch.tensor([len(it.chars) for it in chunk])  # host: no device wait
            h, p1, p2 = self.module.net.encode(batch["chars"], batch["pres1"], batch["pres2"],
                                               batch.get("words"), lengths=lengths)
            probs.append((p1, p2))
            states.append(h)
        out: list[list[tuple[int, int]]] = []
        for p1, p2 in probs if threshold is not None else ():
            p1, p2 = p1.float().cpu().numpy(), p2.float().cpu().numpy()
            for i in range(p1.shape[0]):
                n = len(items[len(out)].lower)
                out.append(decode_spans(p1[i, :n], p2[i, :n], threshold))
        return out, (pad_states(states) if states and keep_states else None)

    def predict(self, items: Sequence[TextItem], ner_threshold: float, link_threshold: float
                ) -> tuple[list[list[tuple[int, int]]], list[list[LinkResult]]]:
        """NER spans and linked mentions per text, each text encoded once."""
        spans, h = self._encode_texts(items, ner_threshold)
        return spans, self._link_encoded(items, spans, h, link_threshold)

    def link(self, items: Sequence[TextItem], spans: Sequence[Sequence[tuple[int, int]]],
             threshold: float) -> list[list[LinkResult]]:
        """Score every pruned candidate of every span; keep the argmax when ``>= threshold``.

        Encodes the texts once for all their pairs; :meth:`predict` shares that pass with NER.
        """
        _, h = self._encode_texts(items, None)
        return self._link_encoded(items, spans, h, threshold)

    @torch.no_grad()
    def _link_encoded(self, items: Sequence[TextItem], spans: Sequence[Sequence[tuple[int, int]]],
                      h: torch.Tensor | None, threshold: float) -> list[list[LinkResult]]:
        """:meth:`link` from the text states ``h (T, L_max, 2H)``: pairs batched by length."""
        pairs = candidate_pairs(items, spans, self.matcher, self.links)
        if not pairs or h is None:
            return best_per_span(items, pairs, np.zeros(0, dtype=np.float32), threshold)
        rows = self.descriptions.rows([c for _, _, _, c in pairs])
        lengths = np.array([len(it.lower) for it in items], dtype=np.int64)
        order = np.argsort(lengths[[t for t, _, _, _ in pairs]], kind="stable")
        feats: dict[tuple[int, str], np.ndarray] = {}  # hand features per (text, entity)
        scores = torch.zeros(len(pairs), device=self.device)
        for b in range(0, len(pairs), self.batch_size):
            idx = order[b:b + self.batch_size]
            sf = []
            for i in idx:
                t, s, e, c = pairs[i]
                f = feats.get((t, c))
                if f is None:
                    f = feats[(t, c)] = self.resources.features.features(
                        items[t].lower, items[t].words, c)
                sf.append(span_features(len(items[t].lower), s, e, f))
            span_feats = pad_rows(sf, torch.float32).to(self.device, non_blocking=True)  # (B, L, 4)
            width = span_feats.shape[1]
            texts = np.array([pairs[i][0] for i in idx], dtype=np.int64)
            text_idx = torch.from_numpy(texts).to(self.device)
            probs = score_encoded(self.module.net, h.index_select(0, text_idx)[:, :width],
                                  lengths[texts], span_feats, self.descriptions.gather(rows[idx]))
            scores[torch.from_numpy(idx).to(self.device)] = probs.float()
        return best_per_span(items, pairs, scores.cpu().numpy(), threshold)

    def link_per_pair(self, items: Sequence[TextItem], spans: Sequence[Sequence[tuple[int, int]]],
                      threshold: float) -> list[list[LinkResult]]:
        """Reference path: one row per pair, text and description re-encoded for each."""
        pairs = candidate_pairs(items, spans, self.matcher, self.links)
        scores = np.zeros(len(pairs), dtype=np.float32)
        for b in range(0, len(pairs), self.batch_size):
            chunk = pairs[b:b + self.batch_size]
            batch = collate([self.resources.pair(items[t], s, e, c) for t, s, e, c in chunk])
            scores[b:b + len(chunk)] = self.module.link_probs(self._to(batch)).float().cpu().numpy()
        return best_per_span(items, pairs, scores, threshold)
