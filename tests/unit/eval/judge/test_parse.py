"""Score and verdict parsing on a corpus of real judge phrasings, Chinese and English, tricky ones included."""

from __future__ import annotations

import pytest

from tunelab.eval.judge.parse import parse_score, parse_verdict

SCORES: list[tuple[str, float | None]] = [
    ("评分：8", 8), ("评分: 8", 8), ("得分: 8分", 8), ("[[8]]", 8), ("Rating: [[7]]", 7), ("8/10", 8),
    ("Score: 8.5", 8.5), ("Rating: **7**", 7), ("**Score:** 6", 6), ("评分：８", 8), ("［［９］］", 9),
    ("得分：９分", 9), ("8", 8), ("9分", 9), ("10", 10), ("评分：八分", 8), ("我给这个回答打8分。", 8),
    ("综合评分为7分。", 7), ("最终得分是 9", 9), ("I would rate it 8 out of 10.", 8),
    ("The answer scores 7/10 overall.", 7),
    ("理由：回答覆盖了3个要点中的2个，字数约为95字。\n评分：7", 7),
    ("评分：6\n理由：回答提到了2个优点和3个缺点，整体一般。", 6),
    ("The response lists 3 steps and cites 2 sources, but misses step 4.\nScore: 6", 6),
    ("Reasoning: covers 5 of 7 points.\n\nFinal score: [[8]]", 8),
    ("Score: 3 for style, but overall\nScore: 7", 7),
    ("## 评分\n**评分：9**", 9), ("- Rating: 5", 5), ("分数为：4分（满分10分）", 4),
    ("该回答可以得到8分(满分10分)。", 8), ("Grade: 10", 10), ("总分：十分", 10), ("评分: 7.5分", 7.5),
    ("The answer is decent. I'd give it a score of 8.", 8),
    # not guessed at: off the scale, ranges, negatives, no number, wrong denominator
    ("Score: 11", None), ("评分：0", None), ("Score: -3", None), ("评分：7-8分", None), ("Score: 7~8", None),
    ("I'd say between 6 and 7.", None), ("这个回答很好，但没有给出分数。", None), ("85/100", None),
    ("The answer mentions 3 facts and 2 dates.", None), ("", None), ("Score: N/A", None),
]


@pytest.mark.parametrize(("reply", "expected"), SCORES)
def test_scores_are_read_from_real_phrasings(reply: str, expected: float | None) -> None:
    assert parse_score(reply, 1, 10) == expected


def test_corpus_is_large_enough() -> None:
    assert len(SCORES) >= 40


def test_scale_bounds_apply() -> None:
    assert parse_score("Score: 5", 1, 5) == 5
    assert parse_score("Score: 6", 1, 5) is None
    assert parse_score("Score: 0", 0, 100) == 0
    assert parse_score("85/100", 0, 100) == 85


VERDICTS: list[tuple[str, str | None]] = [
    ("[[A]]", "A"), ("[[B]]", "B"), ("[[C]]", "C"), ("［［Ａ］］", "A"), ("After comparing both: [[b]]", "B"),
    ("回答A更好。", "A"), ("答案B更优", "B"), ("平局", "C"), ("两者不相上下。", "C"), ("胜者：A", "A"),
    ("Verdict: B", "B"), ("Answer A is better.", "A"), ("It's a tie.", "C"), ("Winner: C", "C"),
    ("回答A较详细，回答B较简洁。", None), ("Answer A is better in style, but Answer B is better overall.", None),
    ("I cannot decide.", None), ("A wrote more, B wrote less", None),
]


@pytest.mark.parametrize(("reply", "expected"), VERDICTS)
def test_pairwise_verdicts(reply: str, expected: str | None) -> None:
    assert parse_verdict(reply) == expected
