"""BLEU-4 / ROUGE must equal LLaMA-Factory's numbers exactly, row by row."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import pytest

from tunelab.eval.metrics import text

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "eval" / "lf_similarity.json"


def golden() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_every_row_equals_llamafactory_compute_similarity() -> None:
    data = golden()
    rows = data["rows"]
    ours = text.lf_scores([r["predict"] for r in rows], [r["label"] for r in rows], workers=1)
    for row, mine in zip(rows, ours):
        assert mine == {k: row[k] for k in text.LF_METRICS}, row
    for name in text.LF_METRICS:
        average = sum(m[name] for m in ours) / len(ours)
        assert average == pytest.approx(data["averages"][name], abs=1e-9)


def reference_row(predict: str, label: str) -> dict[str, float]:
    """The libraries called the way LLaMA-Factory calls them."""
    import jieba
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from rouge_chinese import Rouge

    hyp, ref = list(jieba.cut(predict)), list(jieba.cut(label))
    if not " ".join(hyp).split() or not " ".join(ref).split():
        scores = {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    else:
        result = Rouge().get_scores(" ".join(hyp), " ".join(ref))[0]
        scores = {k: round(v["f"] * 100, 4) for k, v in result.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bleu = sentence_bleu([list(label)], list(predict), smoothing_function=SmoothingFunction().method3)
    scores["bleu-4"] = round(bleu * 100, 4)
    return scores


def random_text(rng: random.Random) -> str:
    pieces = ["价格", "便宜", "质量", "好", "手机", "the", "cat", "mat", "。", "！", "？", "，", " ", "\n", "……",
              "”", "a", "1", "..", "......", "?"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))


def test_random_rows_equal_the_libraries() -> None:
    rng = random.Random(7)
    for _ in range(300):
        predict, label = random_text(rng), random_text(rng)
        assert text.lf_row(predict, label) == reference_row(predict, label), (predict, label)


def slow_lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


def test_bit_parallel_lcs_equals_dynamic_programming() -> None:
    rng = random.Random(3)
    for _ in range(200):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 70))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(0, 70))]
        assert text.lcs_length(a, b) == slow_lcs(a, b)


def test_empty_answers_score_zero() -> None:
    assert text.lf_row("", "参考答案") == {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0, "bleu-4": 0.0}
    assert text.lf_row("参考答案", "参考答案")["bleu-4"] == pytest.approx(100.0)


def test_worker_processes_give_the_same_rows() -> None:
    rows = golden()["rows"] * 6
    predicts, labels = [r["predict"] for r in rows], [r["label"] for r in rows]
    assert text.lf_scores(predicts, labels, workers=2) == text.lf_scores(predicts, labels, workers=1)


def test_only_the_metrics_asked_are_computed() -> None:
    assert set(text.lf_scores(["好的"], ["好的呀"], ["bleu-4"], workers=1)[0]) == {"bleu-4"}


def test_standard_metrics() -> None:
    same = ["the cat sat on the mat today", "a quick brown fox jumps over it"]
    assert text.sacrebleu_corpus(same, same) == pytest.approx(100.0)
    assert text.sacrebleu_corpus(["今天天气很好"], ["今天天气不错"], "sacrebleu-zh") > 0
    assert text.rouge_score_rows(["the cats sat"], ["the cat sat"])[0]["rouge-score-1"] == pytest.approx(100.0)
