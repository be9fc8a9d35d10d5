"""Lead-N baseline: first N non-space characters, N tuned on dev by ROUGE-L (hand-computed)."""

from __future__ import annotations

import pytest

from kexue.models.title_gen.lead import lead, lead_baseline, tune_lead_n


def test_lead_takes_the_first_n_non_space_chars():
    assert lead("今天 天气\n很好", 4) == "今天天气"
    assert lead("短", 5) == "短"


def test_tuning_picks_the_n_with_best_dev_rouge_l_and_scores_test():
    # dev refs are the first 2 chars of each source: ROUGE-L F1 of lead-n vs a 2-char prefix
    # is 2*(2/n)*1/((2/n)+1) = 4/(n+2) for n >= 2 and 2/3 for n = 1 -> best n = 2 (F1 = 1).
    dev = {"source": ["abcdef", "uvwxyz"], "target": ["ab", "uv"]}
    n, curve = tune_lead_n(dev["source"], dev["target"], max_n=4)
    assert n == 2
    assert [round(r["rouge_l"], 4) for r in curve] == [66.6667, 100.0, 80.0, 66.6667]
    test = {"source": ["pqrs", "klmn"], "target": ["pq", "xx"]}
    out = lead_baseline(dev, test, max_n=4)
    assert out["n"] == 2 and out["test"]["rouge_l"] == pytest.approx(50.0)  # (100 + 0) / 2
    assert out["test"]["exact_match"] == pytest.approx(0.5)


def test_ties_go_to_the_smaller_n_and_bad_settings_fail():
    n, _ = tune_lead_n(["ab"], ["zz"], max_n=3)  # every n scores 0
    assert n == 1
    with pytest.raises(ValueError, match="max_n"):
        tune_lead_n(["ab"], ["a"], max_n=0)
    with pytest.raises(ValueError, match="dev split is empty"):
        tune_lead_n([], [], max_n=3)
