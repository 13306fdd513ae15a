"""Classification, set and ranking metrics on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from tunelab.eval.metrics import classify, rank, sets
from tunelab.text.normalize import alias_table, canonical, normalize


def test_normalize_folds_width_case_and_punctuation() -> None:
    assert normalize("  Ｐｏｓｉｔｉｖｅ！ ") == "positive"
    assert normalize("正面。") == "正面"
    table = alias_table({"好评": "正面", "Good": "Positive"})
    assert canonical("好评！", table) == "正面" and canonical("GOOD", table) == "positive"


def test_classification_counts() -> None:
    gold = ["a", "a", "b", "b", "c"]
    predicted = ["a", "b", "b", None, "c"]
    assert classify.accuracy(predicted, gold) == pytest.approx(60.0)
    # per class F1: a: tp1 fp0 fn1 -> 2/3; b: tp1 fp1 fn1 -> 1/2; c: 1
    assert classify.macro_f1(predicted, gold) == pytest.approx(100 * (2 / 3 + 1 / 2 + 1) / 3)
    # micro: tp 3, fp 1, fn 2 -> 6/9
    assert classify.micro_f1(predicted, gold) == pytest.approx(100 * 6 / 9)
    assert classify.confusion(predicted, gold)["b"] == {"<unparsed>": 1, "b": 1}


def test_set_metrics_micro_and_macro() -> None:
    gold = [frozenset({"x", "y"}), frozenset({"z"}), frozenset()]
    predicted = [frozenset({"x"}), frozenset({"z", "w"}), frozenset()]
    micro = sets.micro(predicted, gold)
    assert micro["micro-precision"] == pytest.approx(100 * 2 / 3)
    assert micro["micro-recall"] == pytest.approx(100 * 2 / 3)
    macro = sets.macro(predicted, gold)
    assert macro["macro-f1"] == pytest.approx(100 * (2 / 3 + 2 / 3 + 1) / 3)


def test_ranking_metrics() -> None:
    gold = ["a", "b", "c"]
    assert rank.row_score("ndcg@3", ["a", "b", "c"], gold, graded=True) == pytest.approx(1.0)
    swapped = rank.row_score("ndcg@3", ["b", "a", "c"], gold, graded=True)
    ideal = 3 + 2 / math.log2(3) + 1 / 2
    assert swapped == pytest.approx((2 + 3 / math.log2(3) + 1 / 2) / ideal)
    assert rank.row_score("dcg@2", ["x", "a"], gold, graded=False) == pytest.approx(1 / math.log2(3))
    assert rank.row_score("hit@1", ["x", "a"], gold, graded=False) == 0.0
    assert rank.row_score("hit@2", ["x", "a"], gold, graded=False) == 1.0
    assert rank.row_score("hits@3", ["a", "x", "c"], gold, graded=False) == 2.0
    assert rank.row_score("mrr", ["x", "y", "b"], gold, graded=False) == pytest.approx(1 / 3)
    assert rank.row_score("ndcg@3", [], gold, graded=True) == 0.0
    with pytest.raises(ValueError):
        rank.row_score("ndcg", ["a"], gold, graded=True)
