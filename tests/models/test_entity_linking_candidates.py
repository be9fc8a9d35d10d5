"""Max-matching candidates, the EL metric and the behaviour-modelling rules, on hand-made data."""

from __future__ import annotations

import random

import pytest

from kexue.models.entity_linking.candidates import (
    AliasMatcher,
    Span,
    lower_keep_length,
    naive_hits,
    optimal_path,
)
from kexue.models.entity_linking.metrics import micro_prf
from kexue.models.entity_linking.pruning import PruningConfig, candidate_ids, fit_behaviour


def brute_force_cost(text: str, words: set[str]) -> tuple[int, int]:
    """Min (uncovered chars, words) over ALL segmentations (exponential; tiny texts only)."""
    n = len(text)
    best = [None] * (n + 1)
    best[n] = (0, 0)

    def solve(i: int) -> tuple[int, int]:
        if best[i] is not None:
            return best[i]
        u, w = solve(i + 1)
        options = [(u + 1, w)]
        for j in range(i + 1, n + 1):
            if text[i:j] in words:
                u2, w2 = solve(j)
                options.append((u2, w2 + 1))
        best[i] = min(options)
        return best[i]

    return solve(0)


def path_cost(text: str, spans: list[tuple[int, int]]) -> tuple[int, int]:
    covered = sum(j - i for i, j in spans)
    return len(text) - covered, len(spans)


KB = {"南京": ["1"], "南京南站": ["2"], "南站": ["3"], "高铁": ["4"], "坐高铁": ["5"],
      "《暗警》": ["6"], "iPhone": ["7"], "京南": ["8"]}


def test_overlaps_prefer_longest_cover() -> None:
    m = AliasMatcher(KB)
    text = "坐高铁在南京南站下"
    assert m.match(text) == [Span(0, 3, "坐高铁"), Span(4, 8, "南京南站")]
    # without the long word the best cover is 南京 + 南站 (4 chars, 2 words), not 京南
    m2 = m.without(["南京南站", "坐高铁"], block=False)
    assert m2.match(text) == [Span(1, 3, "高铁"), Span(4, 6, "南京"), Span(6, 8, "南站")]


def test_lowercase_and_book_marks() -> None:
    m = AliasMatcher(KB)
    text = "买IPHONE看暗警"
    assert m.match(text) == [Span(1, 7, "iphone"), Span(8, 10, "暗警")]
    assert m.candidates("《暗警》") == ["6"] and m.candidates("IPhone") == ["7"]
    # length-preserving lowercase keeps offsets valid even for chars that expand when lowered
    assert len(lower_keep_length("İ南京")) == 3
    assert m.match("İ南京") == [Span(1, 3, "南京")]


def test_blocked_words_keep_segmentation() -> None:
    m = AliasMatcher(KB).without(["南京南站"], block=True)
    assert m.match("南京南站") == []          # blocker still wins the segmentation
    m = AliasMatcher(KB).without(["南京南站"], block=False)
    assert m.match("南京南站") == [Span(0, 2, "南京"), Span(2, 4, "南站")]


@pytest.mark.parametrize("seed", range(5))
def test_dp_matches_brute_force_and_naive(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "甲乙丙丁戊"
    words = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(12)}
    m = AliasMatcher({w: [w] for w in words})
    for _ in range(40):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        spans = m.match(text)
        assert path_cost(text, [(s.start, s.end) for s in spans]) == brute_force_cost(text, words)
        assert m.match_naive(text) == spans
        assert all(text[s.start:s.end] == s.alias for s in spans)
        assert naive_hits(text, words, m.max_len) == m.hits(text)


def test_optimal_path_unique_optimum() -> None:
    # hits: [0,2) [2,4) [0,4) [1,3): the single 4-char word is the unique optimum
    assert optimal_path(4, {2: [0], 4: [0, 2], 3: [1]}) == [(0, 4)]
    assert optimal_path(3, {}) == []


def test_metric_nil_duplicates_offsets() -> None:
    gold = {"t1": [("南京南站", 0, "2"), ("南京南站", 9, "2"), ("高铁", 5, "NIL")],
            "t2": [("比特币", 0, "9")]}
    pred = {"t1": [("南京南站", 0, "2"), ("南京南站", 0, "2"),      # duplicate counts once
                   ("南京南站", 4, "2"),                             # wrong offset
                   ("高铁", 5, "NIL")],                              # NIL dropped from pred too
            "t3": [("x", 1, "5")]}
    r = micro_prf(pred, gold)
    assert (r.n_correct, r.n_pred, r.n_gold) == (1, 3, 3)
    assert r.f1 == pytest.approx(2 * 1 / (3 + 3))
    assert r.precision == pytest.approx(1 / 3) and r.recall == pytest.approx(1 / 3)
    assert micro_prf({}, {}).f1 == 0.0
    pairs = micro_prf({"a": [("南京", 0), ("南京", 3)]}, {"a": [("南京", 3)]})
    assert (pairs.n_correct, pairs.precision, pairs.recall) == (1, 0.5, 1.0)


PRUNE_KB = {"暗警": ["6", "9"], "迅雷": ["7", "10", "11"], "下载": ["4", "5"], "视频": ["2"],
            "高清": ["1"]}
PRUNE_TRAIN = [
    ("暗警迅雷下载", [("暗警", 0, "6"), ("迅雷", 2, "7")]),
    ("暗警下载", [("暗警", 0, "6")]),
    ("迅雷下载", [("迅雷", 0, "7")]),
    ("下载迅雷", [("迅雷", 2, "10")]),
    ("视频暗警", [("暗警", 2, "6")]),
    ("视频", []),
    ("高清视频", [("高清", 0, "99"), ("视频", 2, "NIL")]),
    ("高清", [("高清", 0, "99")]),
]


def test_behaviour_pruning_hand_computed() -> None:
    m = AliasMatcher(PRUNE_KB)
    rec = fit_behaviour(m, PRUNE_TRAIN, PruningConfig())
    # 下载: remove 4 (texts 1-4), pred 0 -> 5/1 >= 5 dropped.
    # 视频: remove 3 (texts 5, 6, 7: its gold there is NIL), pred 0 -> 4/1 kept.
    # 暗警 / 迅雷 / 高清 are annotated wherever found -> ratio <= 1.
    assert rec["dropped"] == {"下载": {"pred": 0, "remove": 4, "ratio": 5.0}}
    # 暗警 -> '6' x3 survives; 迅雷 -> '7' x2 survives, '10' x1 does not;
    # 高清 -> '99' x2 survives but is not a KB id of 高清 -> no link (fall back to all).
    assert rec["candidate_links"] == {"暗警": ["6"], "迅雷": ["7"]}
    assert candidate_ids("暗警", m, rec["candidate_links"]) == ["6"]
    assert candidate_ids("高清", m, rec["candidate_links"]) == ["1"]
    strict = fit_behaviour(m, PRUNE_TRAIN, PruningConfig(ratio=4.0, min_count=4))
    assert set(strict["dropped"]) == {"下载", "视频"} and strict["candidate_links"] == {}
    off = fit_behaviour(m, PRUNE_TRAIN, PruningConfig(dictionary=False, candidates=False))
    assert off["dropped"] == {} and off["candidate_links"] == {}
