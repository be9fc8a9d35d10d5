"""Hand features (no isin_feature bug), model shapes / padding invariance, loss, decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kexue.models.entity_linking.batching import LinkingResources, collate
from kexue.models.entity_linking.candidates import AliasMatcher
from kexue.models.entity_linking.config import ModelConfig
from kexue.models.entity_linking.decode import decode_spans
from kexue.models.entity_linking.features import (
    EntityFeatureCache,
    ObjectMatcher,
    aligned_isin,
    hand_features,
    load_word_vectors,
    object_match,
    object_pattern,
    word_ids_per_char,
)
from kexue.models.entity_linking.module import EMBEDDING_PATH, EntityLinkingModule, masked_bce
from kexue.models.entity_linking.vocab import CharVocab


def unit_loop_isin(units, vocabulary) -> np.ndarray:
    """The intended aligned feature as a plain loop (the reference for ``aligned_isin``): mark
    each unit's chars when the unit is in ``vocabulary``, ALWAYS advancing by its length."""
    y = np.zeros(sum(len(u) for u in units), dtype=np.float32)
    i = 0
    for unit in units:
        if unit in vocabulary:
            y[i:i + len(unit)] = 1.0
        i += len(unit)
    return y


def reference_buggy_isin(text_a, text_b) -> np.ndarray:
    """``el.py``'s isin_feature, verbatim in spirit: the counter moves only on matches."""
    y = np.zeros(len("".join(text_a)))
    text_b = set(text_b)
    i = 0
    for w in text_a:
        if w in text_b:
            for _ in w:
                y[i] = 1
                i += 1
    return y


def test_f1_f2_are_position_aligned_not_the_reference_bug() -> None:
    query, desc = "看南京的雨", "南京是城市，雨多"
    f1 = aligned_isin(list(query), frozenset(desc))
    assert f1.tolist() == [0, 1, 1, 0, 1]                         # 南 京 雨 at their positions
    assert aligned_isin(query, frozenset(desc)).tolist() == f1.tolist()  # a str is its chars
    assert aligned_isin([], frozenset(desc)).shape == (0,)
    assert reference_buggy_isin(query, desc).tolist() == [1, 1, 1, 0, 0]  # packed prefix
    words, desc_words = ["看", "南京", "的", "雨"], {"南京", "是", "城市", "雨", "多"}
    f2 = aligned_isin(words, frozenset(desc_words))
    assert f2.tolist() == [0, 1, 1, 0, 1]
    assert reference_buggy_isin(words, desc_words).tolist() == [1, 1, 1, 0, 0]
    assert word_ids_per_char(["看", "南京"], {"南京": 7}) == [0, 7, 7]


def test_object_feature_longest_first() -> None:
    pat = object_pattern(["南京", "南京南站", "一个非常非常长的超过十个字的宾语对象"])
    assert object_match("在南京南站", pat).tolist() == [0, 1, 1, 1, 1]
    assert object_match("abc", None).tolist() == [0, 0, 0]
    cache = EntityFeatureCache({"e": "城市：南京"}, {"e": ["南京"]})
    feats = cache.features("到南京", ["到", "南京"], "e")
    assert feats.shape == (3, 3) and feats[:, 2].tolist() == [0, 1, 1]


def test_hand_features_equal_the_unit_formulas_on_random_queries() -> None:
    """``hand_features`` against the unit loop (``unit_loop_isin``) and ``object_match`` (Python
    ``re``), with multi-char words, repeated units and empty matches; a word split that does
    not spell the query is an error naming both."""
    import random

    rng = random.Random(3)
    alphabet = "南京市长江大桥ab"
    for _ in range(500):
        query = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        words, i = [], 0
        while i < len(query):
            n = rng.randint(1, 3)
            words.append(query[i:i + n])
            i += n
        desc = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        desc_words = frozenset(desc[j:j + 2] for j in range(len(desc)))
        objects = [desc[:2], desc[1:4]] if desc else []
        expected = np.stack([unit_loop_isin(list(query), frozenset(desc)),
                             unit_loop_isin(words, desc_words),
                             object_match(query, object_pattern(objects))], axis=1)
        got = hand_features(query, words, frozenset(desc), desc_words, ObjectMatcher(objects))
        assert got.dtype == np.float32 and np.array_equal(got, expected), (query, words, desc)
    with pytest.raises(ValueError, match="do not spell the query"):
        hand_features("南京市", ["南京"], frozenset(), frozenset(), None)


def test_word_vector_file_through_the_catalog_dataset(tmp_path) -> None:
    from kexue.config import ConfigError
    from kexue.io import TextLinesDataset
    from kexue.models.entity_linking.training import read_word_vectors

    p = tmp_path / "vec.txt"
    p.write_text("2 3\n南京 1 2 3\n城市 0 0 1\n", encoding="utf-8")
    source = TextLinesDataset(filepath=str(p), optional=True).load()
    words, vecs = load_word_vectors(source, str(p))
    assert words == ["南京", "城市"] and vecs.shape == (2, 3) and vecs[1, 2] == 1.0
    cfg = ModelConfig(word_vectors=True)
    words, table = read_word_vectors(cfg, source)
    assert table.shape == (3, 3) and float(table[0].abs().sum()) == 0.0   # row 0 = unknown
    assert read_word_vectors(ModelConfig(), source) == (None, None)
    missing = TextLinesDataset(filepath=str(tmp_path / "nope.txt"), optional=True).load()
    assert missing.exists is False and list(missing) == []
    with pytest.raises(ConfigError, match="entity_linking.model.word_vectors"):
        read_word_vectors(cfg, missing)
    with pytest.raises(ValueError, match=":3: vector of size 2"):
        load_word_vectors(["南京 1 2 3", "x 1 2 3", "y 1 2"], "v.txt")


def _resources(word2id=None):
    kb = {"南京": ["a", "b"], "南站": ["c"], "高铁": ["d"]}
    descs = {"a": "城市：南京", "b": "歌曲：南京", "c": "车站", "d": "高速铁路"}
    vocab = CharVocab.build(["坐高铁在南京南站下", *descs.values()], min_count=1)
    res = LinkingResources(vocab, EntityFeatureCache(descs, {k: [] for k in descs}), 16, word2id)
    return AliasMatcher(kb), res


def _module(word_vectors=None) -> EntityLinkingModule:
    torch.manual_seed(0)
    cfg = ModelConfig(char_size=8, hidden_size=4, conv_size=6, dense_size=5, heads=2, head_dim=3)
    return EntityLinkingModule(40, cfg, word_vectors=word_vectors).eval()


@pytest.mark.parametrize("use_words", [False, True])
def test_padding_invariance_and_shapes(use_words: bool) -> None:
    word2id = {"南京": 1, "高铁": 2} if use_words else None
    matcher, res = _resources(word2id)
    module = _module(torch.randn(3, 4) if use_words else None)
    short = res.text_item("坐高铁", matcher)
    long = res.text_item("坐高铁在南京南站下", matcher)
    assert short.pres1.tolist() == [0, 1, 0] and long.spans == [(1, 3), (4, 6), (6, 8)]
    alone = collate([res.pair(short, 1, 3, "d")])
    padded = collate([res.pair(short, 1, 3, "d"), res.pair(long, 4, 6, "a")])
    assert padded["chars"].shape == (2, 9) and padded["span_feats"].shape == (2, 9, 4)
    assert ("words" in padded) == use_words
    p1a, p2a = module.ner_probs(alone)
    p1b, p2b = module.ner_probs(padded)
    torch.testing.assert_close(p1a[0], p1b[0, :3], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(p2a[0], p2b[0, :3], atol=1e-6, rtol=1e-5)
    assert float(p1b[1, 0]) == 0.0  # multiplied by pres1: not a max-match start
    sa, sb = module.link_probs(alone), module.link_probs(padded)
    assert sb.shape == (2,)
    torch.testing.assert_close(sa[0], sb[0], atol=1e-6, rtol=1e-5)


def test_loss_backward_and_embedding_path() -> None:
    matcher, res = _resources()
    module = _module().train()
    item = res.text_item("坐高铁在南京南站下", matcher)
    ex = res.pair(item, 4, 6, "a")
    ex.update(s1=np.eye(9, dtype=np.float32)[4], s2=np.eye(9, dtype=np.float32)[5], label=1.0)
    batch = collate([ex, dict(ex, label=0.0)])
    loss, metrics = module.compute_loss(batch)
    assert set(metrics) == {"s1_loss", "s2_loss", "link_loss", "link_acc"}
    torch.testing.assert_close(loss.detach(), metrics["s1_loss"] + metrics["s2_loss"] + metrics["link_loss"])
    loss.backward()
    emb = module.get_submodule(EMBEDDING_PATH)
    assert isinstance(emb, torch.nn.Embedding) and emb.weight.grad is not None


def test_masked_bce_hand_value() -> None:
    prob = torch.tensor([[0.5, 0.25, 0.9]])
    target = torch.tensor([[1.0, 0.0, 1.0]])
    mask = torch.tensor([[True, True, False]])
    expected = -(np.log(0.5) + np.log(0.75)) / 2
    assert float(masked_bce(prob, target, mask)) == pytest.approx(expected, rel=1e-6)


def test_decode_spans_nearest_end() -> None:
    p1 = np.array([0.9, 0.1, 0.5, 0.0, 0.45, 0.0])
    p2 = np.array([0.0, 0.8, 0.0, 0.7, 0.3, 0.2])
    # start 0 -> end 1; start 2 -> end 3; start 4 -> no end >= 4 above 0.4
    assert decode_spans(p1, p2, 0.4) == [(0, 2), (2, 4)]
    assert decode_spans(np.array([0.9]), np.array([0.9]), 0.4) == [(0, 1)]
