"""Char ROUGE-1/2/L, BLEU and exact match on hand-computed cases."""

from __future__ import annotations

import pytest

from kexue.models.title_gen.metrics import (
    corpus_bleu,
    generation_metrics,
    lcs_length,
    rouge_l,
    rouge_n,
)


def test_rouge_on_hand_computed_pair():
    # hyp 今天天气好 vs ref 今天天气坏: unigrams 4 of 5 overlap (P = R = 0.8);
    # bigrams 今天 天天 天气 overlap, 气好/气坏 differ: 3 of 4 (0.75); LCS = 今天天气 = 4 -> 0.8
    assert rouge_n("今天天气好", "今天天气坏", 1) == pytest.approx(0.8)
    assert rouge_n("今天天气好", "今天天气坏", 2) == pytest.approx(0.75)
    assert rouge_l("今天天气好", "今天天气坏") == pytest.approx(0.8)


def test_rouge_l_differs_from_unigram_overlap_and_uses_clipped_counts():
    # "abcd" vs "dcba": every char overlaps (R1 = 1) but the LCS has length 1 -> R-L = 0.25
    assert rouge_n("abcd", "dcba", 1) == pytest.approx(1.0)
    assert rouge_n("abcd", "dcba", 2) == 0.0
    assert lcs_length("abcd", "dcba") == 1
    assert rouge_l("abcd", "dcba") == pytest.approx(0.25)
    # clipping: hyp "aaaa" vs ref "ab": overlap min(4, 1) = 1, P = 1/4, R = 1/2 -> F1 = 1/3
    assert rouge_n("aaaa", "ab", 1) == pytest.approx(1 / 3)
    # length mismatch: "ab" vs "abcd": P = 1, R = 0.5 -> F1 = 2/3
    assert rouge_l("ab", "abcd") == pytest.approx(2 / 3)
    assert rouge_n("", "abc", 1) == 0.0 and rouge_l("", "abc") == 0.0


def test_bleu_hand_computed():
    # p1 = 4/5, p2 = 3/4, p3 = 2/3 (今天天, 天天气), p4 = 1/2, BP = 1 (equal lengths)
    expected = 100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert corpus_bleu(["今天天气好"], ["今天天气坏"]) == pytest.approx(expected, abs=1e-6)
    # brevity penalty: hyp "abcd" is a prefix of ref "abcdefgh": all precisions 1,
    # BP = exp(1 - 8/4) = e^-1
    import math
    assert corpus_bleu(["abcd"], ["abcdefgh"]) == pytest.approx(100 * math.exp(-1), abs=1e-6)


def test_generation_metrics_table_and_exact_match():
    m = generation_metrics(["今天天气好", "基于 注意力"], ["今天天气坏", "基于注意力"])
    assert m["n"] == 2
    assert m["exact_match"] == pytest.approx(0.5)   # whitespace is ignored
    assert m["rouge_1"] == pytest.approx(100 * (0.8 + 1.0) / 2)
    assert m["rouge_2"] == pytest.approx(100 * (0.75 + 1.0) / 2)
    assert m["rouge_l"] == pytest.approx(100 * (0.8 + 1.0) / 2)
    with pytest.raises(ValueError):
        generation_metrics(["a"], [])
