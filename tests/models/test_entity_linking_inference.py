"""Encode-once linking: same predictions as the per-pair path, description cache, exact
faster entity features (object matches without a regex, lazily segmented descriptions)."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from kexue.models.entity_linking.batching import LinkingResources
from kexue.models.entity_linking.candidates import AliasMatcher
from kexue.models.entity_linking.config import ModelConfig
from kexue.models.entity_linking.decode import Linker, candidate_pairs
from kexue.models.entity_linking.description_cache import weight_version
from kexue.models.entity_linking.features import (
    DescriptionWords,
    EntityFeatureCache,
    ObjectMatcher,
    object_match,
    object_pattern,
    segment,
)
from kexue.models.entity_linking.module import EntityLinkingModule
from kexue.models.entity_linking.pruning import candidate_ids
from kexue.models.entity_linking.vocab import CharVocab

TEXTS = ["坐高铁在南京南站下", "南京的雨", "南站", "高铁南京南京南站", "没有实体的句子"]
KB = {"南京": ["a", "b", "e"], "南站": ["c"], "高铁": ["d"], "南京南站": ["f", "c"]}
DESCS = {"a": "城市：南京，江苏省会", "b": "歌曲：南京，2003 年发行", "c": "车站：南京南站",
         "d": "高速铁路", "e": "电影《南京》", "f": "南京南站是高铁站"}


def test_object_matcher_equals_the_regex_alternation() -> None:
    rng = random.Random(0)
    alphabet = "abcAB南京"
    for _ in range(3000):
        objs = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
                for _ in range(rng.randint(0, 6))]
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))).lower()
        expected = object_match(text, object_pattern(objs, max_len=3))  # Python re
        assert ObjectMatcher(objs, max_len=3).match(text).tolist() == expected.tolist(), (objs, text)
    assert ObjectMatcher(["南京", "南京南站"]).match("在南京南站").tolist() == [0, 1, 1, 1, 1]


def test_lazy_description_words_equal_whole_text_jieba() -> None:
    memo: dict[str, frozenset[str]] = {}
    texts = [*DESCS.values(), "摘要：下载，网络用语。中文名：下载\n标签：词语", "a b\t12.5% x-y", "",
             "《》", "中文名：下载", "南京市长江大桥位于南京"]
    rng = random.Random(1)
    for text in texts:
        words = set(segment(text))  # jieba on the whole text: the reference
        lazy = DescriptionWords(text, memo)
        probes = list(words) + [text[i:i + n] for i in range(len(text)) for n in (1, 2, 3, 4)]
        probes += ["".join(rng.choice("南京市长江大桥下载") for _ in range(2)) for _ in range(30)]
        assert [p in lazy for p in probes] == [p in words for p in probes], text
    assert "中文名" in memo  # a repeated piece is segmented once for all descriptions


def _linker(use_words: bool, seed: int = 0) -> Linker:
    word2id = {"南京": 1, "高铁": 2, "车站": 3} if use_words else None
    vocab = CharVocab.build([*TEXTS, *DESCS.values()], min_count=1)
    objects = {k: ["南京", "江苏"] if k == "a" else [] for k in DESCS}
    res = LinkingResources(vocab, EntityFeatureCache(DESCS, objects), 8, word2id)
    torch.manual_seed(seed)
    cfg = ModelConfig(char_size=8, hidden_size=4, conv_size=6, dense_size=5, heads=2, head_dim=3,
                      max_desc_len=8)
    module = EntityLinkingModule(len(vocab), cfg, word_vectors=torch.randn(4, 3) if use_words
                                 else None)
    return Linker(module, res, AliasMatcher(KB), {"南站": ["c"]}, batch_size=3)


def _rows(results) -> list[tuple]:
    return [(t, r.mention, r.offset, r.kb_id, r.n_candidates) for t, res in enumerate(results)
            for r in res]


@pytest.mark.parametrize("use_words", [False, True])
def test_encode_once_equals_per_pair_path(use_words: bool) -> None:
    linker = _linker(use_words)
    items = linker.items(TEXTS)
    spans = [it.spans for it in items]  # every max-match span (an untrained NER finds few)
    assert sum(map(len, spans)) >= 6
    ref = linker.link_per_pair(items, spans, threshold=0.0)
    new = linker.link(items, spans, threshold=0.0)
    assert _rows(new) == _rows(ref) and max(r.n_candidates for res in ref for r in res) == 3
    for a, b in zip((r for res in ref for r in res), (r for res in new for r in res)):
        assert b.score == pytest.approx(a.score, abs=1e-6)
    ner_ref = linker.ner(items, 0.4)
    ner_new, linked = linker.predict(items, 0.4, 0.0)
    assert ner_new == ner_ref
    assert _rows(linked) == _rows(linker.link_per_pair(items, ner_ref, 0.0))


def test_descriptions_encoded_once_across_calls() -> None:
    linker = _linker(False)
    calls: list[str] = []
    encode = linker.descriptions.encode_inputs
    linker.descriptions.encode_inputs = lambda e: calls.append(e) or encode(e)
    items = linker.items(TEXTS)
    spans = [it.spans for it in items]
    linker.link(items[1:3], spans[1:3], 0.0)  # 南京的雨, 南站: a, b, e, c
    first = list(calls)
    linker.link(items, spans, 0.0)
    needed = {c for it, sp in zip(items, spans) for s, e in sp
              for c in candidate_ids(it.lower[s:e], linker.matcher, linker.links)}
    assert len(calls) == len(set(calls)) and set(calls) == needed  # each entity once
    assert 0 < len(first) < len(needed) and len(linker.descriptions) == len(needed)


def test_cache_dropped_when_weights_change() -> None:
    linker = _linker(False)
    items = linker.items(TEXTS)
    spans = [it.spans for it in items]
    before = linker.link(items, spans, 0.0)
    version = weight_version(linker.module.net)
    other = _linker(False, seed=1).module.state_dict()
    linker.module.load_state_dict(other)  # in-place copy_: same tensors, new versions
    assert weight_version(linker.module.net) != version
    after = linker.link(items, spans, 0.0)
    ref = linker.link_per_pair(items, spans, 0.0)
    scores = [[r.score for r in res] for res in after]
    assert scores != [[r.score for r in res] for res in before]  # really other weights
    np.testing.assert_allclose(sum(scores, []), [r.score for res in ref for r in res], atol=1e-6)
    assert _rows(after) == _rows(ref)
    with torch.no_grad():  # an in-place update (what an optimizer step does)
        linker.module.net.desc_lstm.lstm.weight_hh_l0.add_(0.5)
    np.testing.assert_allclose([r.score for res in linker.link(items, spans, 0.0) for r in res],
                               [r.score for res in linker.link_per_pair(items, spans, 0.0)
                                for r in res], atol=1e-6)


def test_empty_inputs() -> None:
    linker = _linker(False)
    assert linker.predict([], 0.4, 0.1) == ([], [])
    items = linker.items(["没有", "实体"])
    assert linker.link(items, [[], []], 0.1) == [[], []]


SYNCING = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")
SRC = Path(__file__).resolve().parents[2] / "src" / "kexue"


def _probe(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Count Tensor calls that read a value back to the host, by (caller file, method)."""
    calls: Counter = Counter()

    def wrap(name, original):
        def probe(tensor, *args, **kwargs):
            caller = Path(sys._getframe(1).f_code.co_filename).resolve()
            if caller.is_relative_to(SRC):
                calls[(str(caller.relative_to(SRC)), name)] += 1
            return original(tensor, *args, **kwargs)
        return probe

    for name in SYNCING:
        monkeypatch.setattr(torch.Tensor, name, wrap(name, getattr(torch.Tensor, name)))
    return calls


def test_encode_once_reads_back_once_per_call_not_per_batch(monkeypatch) -> None:
    linker = _linker(False)
    linker.batch_size = 2  # 3 text batches, >= 6 pair batches
    items = linker.items(TEXTS)
    spans = [it.spans for it in items]
    n_pairs = len(candidate_pairs(items, spans, linker.matcher, linker.links))
    assert n_pairs >= 12  # >= 6 pair batches of 2
    calls = _probe(monkeypatch)
    linker.link_per_pair(items, spans, 0.0)
    per_pair = calls[("models/entity_linking/decode.py", "cpu")]
    assert per_pair >= (n_pairs + 1) // 2  # the probe sees the reference's per-batch copies
    calls.clear()
    linker.predict(items, 0.4, 0.0)
    # p_start / p_end of each text batch, copied after the NER loop, and the scores once
    assert calls[("models/entity_linking/decode.py", "cpu")] == 2 * 3 + 1
    hot = {k: n for k, n in calls.items() if k[0].startswith("nn/") or k[0] in (
        "models/entity_linking/inference.py", "models/entity_linking/description_cache.py",
        "models/entity_linking/model.py")}
    hot.pop(("nn/rnn.py", "__int__"), None)  # AlignedBiLSTM range-checks the HOST lengths
    assert hot == {}


def test_cache_over_its_memory_budget_starts_again() -> None:
    linker = _linker(False)
    cache = linker.descriptions
    cache.max_rows = 3  # room for 3 descriptions
    items = linker.items(TEXTS)
    spans = [it.spans for it in items]
    linker.link(items[1:3], spans[1:3], 0.0)  # a, b, e, c: over budget -> refilled by this call
    assert len(cache) == 4
    got = linker.link(items, spans, 0.0)  # all 6 needed: emptied first, then all encoded
    assert len(cache) == 6
    ref = linker.link_per_pair(items, spans, 0.0)
    assert _rows(got) == _rows(ref)
    np.testing.assert_allclose([r.score for res in got for r in res],
                               [r.score for res in ref for r in res], atol=1e-6)


def test_description_cache_budget_is_a_parameter() -> None:
    """``data.description_cache_mib`` sizes the cache (rows = budget / one entry's bytes, by
    hand) and a non-positive value fails naming the key."""
    from kexue.config import ConfigError, build_config
    from kexue.models.entity_linking.config import DataConfig

    linker = _linker(False)
    cfg = build_config(DataConfig, {"description_cache_mib": 1}, where="entity_linking.data")
    small = Linker(linker.module, linker.resources, linker.matcher, linker.links, batch_size=3,
                   cache_bytes=cfg.description_cache_mib * 2**20)
    entry = 8 * 2 * 4 * 4  # max_desc_len 8 x BiLSTM output 2 * hidden 4 x float32
    assert small.descriptions.max_rows == 2**20 // entry
    with pytest.raises(ConfigError, match="entity_linking.data.*description_cache_mib=0 must be >= 1"):
        build_config(DataConfig, {"description_cache_mib": 0}, where="entity_linking.data")
