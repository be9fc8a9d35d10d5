"""CharVocab: min_freq, specials, unk, encode/decode round trip, padding, serialisation."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from kexue.data.corpora import SPECIAL_IDS, CharVocab

TEXTS = ["今天天气很好", "今天下雨", "天"]  # 天 x4, 今 x2, 气 好 很 下 雨 x1


def test_specials_have_fixed_ids():
    v = CharVocab.from_texts(TEXTS, min_freq=1)
    assert (v.pad_id, v.unk_id, v.start_id, v.end_id) == (0, 1, 2, 3)
    assert v.itos[:4] == ["<pad>", "<unk>", "<start>", "<end>"]
    assert SPECIAL_IDS == {"pad": 0, "unk": 1, "start": 2, "end": 3}


def test_min_freq_keeps_exactly_the_frequent_chars():
    counts = Counter("".join(TEXTS))
    for min_freq in (1, 2, 3, 5):
        v = CharVocab.from_texts(TEXTS, min_freq=min_freq)
        expected = {c for c, n in counts.items() if n >= min_freq}
        assert set(v.itos[4:]) == expected
        assert len(v) == 4 + len(expected)
    v = CharVocab.from_texts(TEXTS, min_freq=2)
    assert v.itos[4:] == ["天", "今"]  # most frequent first
    assert v.counts == {"天": 4, "今": 2}


def test_order_is_deterministic_on_ties():
    a = CharVocab.from_texts(["ba", "ab"], min_freq=1)
    b = CharVocab.from_texts(["ab", "ba"], min_freq=1)
    assert a.itos == b.itos == ["<pad>", "<unk>", "<start>", "<end>", "a", "b"]


def test_unknown_chars_map_to_unk():
    v = CharVocab.from_texts(TEXTS, min_freq=2)
    assert v.encode("天晴今") == [4, 1, 5]
    assert "晴" not in v and "天" in v
    assert v.unk_rate(["天晴", "今天"]) == pytest.approx(1 / 4)
    assert v.decode(v.encode("天晴今")) == "天今"
    assert v.decode(v.encode("天晴今"), unk="?") == "天?今"


def test_encode_decode_round_trip_with_start_end():
    v = CharVocab.from_texts(TEXTS, min_freq=1)
    for text in TEXTS:
        ids = v.encode(text, add_start=True, add_end=True)
        assert ids[0] == v.start_id and ids[-1] == v.end_id and len(ids) == len(text) + 2
        assert v.decode(ids) == text


def test_max_len_truncates_but_keeps_specials_and_pads():
    v = CharVocab.from_texts(TEXTS, min_freq=1)
    ids = v.encode("今天天气很好", 5, add_start=True, add_end=True)
    assert len(ids) == 5 and ids[0] == 2 and ids[-1] == 3
    assert v.decode(ids) == "今天天"
    padded = v.encode("今天", 6, add_end=True, pad=True)
    assert padded == [v.stoi["今"], v.stoi["天"], 3, 0, 0, 0]
    with pytest.raises(ValueError, match="needs max_len"):
        v.encode("今", pad=True)
    with pytest.raises(ValueError, match="cannot hold"):
        v.encode("今", 1, add_start=True, add_end=True)


def test_encode_batch_pads_to_longest():
    v = CharVocab.from_texts(TEXTS, min_freq=1)
    rows = v.encode_batch(["今天", "天"], add_end=True)
    assert [len(r) for r in rows] == [3, 3]
    assert rows[1] == [v.stoi["天"], 3, 0]
    assert [v.decode(r) for r in rows] == ["今天", "天"]


def test_decode_stops_at_end_or_pad_and_drops_specials():
    v = CharVocab.from_texts(TEXTS, min_freq=1)
    t, j = v.stoi["天"], v.stoi["今"]
    assert v.decode([2, j, t, 3, j, j]) == "今天"
    assert v.decode([j, 0, t]) == "今"
    assert v.decode([2, 2, j]) == "今"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        v.decode([len(v)])


def test_to_dict_from_dict_round_trip_through_json():
    v = CharVocab.from_texts(TEXTS, min_freq=2)
    data = json.loads(json.dumps({**v.to_dict(), "extra": 1}, ensure_ascii=False))
    assert data["specials"] == SPECIAL_IDS and data["min_freq"] == 2
    w = CharVocab.from_dict(data)
    assert w == v and w.min_freq == 2 and w.encode("天今") == v.encode("天今")


def test_invalid_tables_are_rejected():
    with pytest.raises(ValueError, match="special tokens"):
        CharVocab(["a", "b"])
    with pytest.raises(ValueError, match="duplicate"):
        CharVocab(["<pad>", "<unk>", "<start>", "<end>", "a", "a"])
    with pytest.raises(ValueError, match="single characters"):
        CharVocab(["<pad>", "<unk>", "<start>", "<end>", "ab"])
    with pytest.raises(ValueError, match="specials"):
        CharVocab.from_dict({"itos": ["<pad>", "<unk>", "<start>", "<end>"],
                             "specials": {"pad": 1}})
    with pytest.raises(ValueError, match="min_freq"):
        CharVocab.from_texts(["a"], min_freq=0)
