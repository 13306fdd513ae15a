"""Scoring a task's answers: extraction, unextracted rows, per-kind aggregation, references that cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.config.eval_tasks import EvalTaskSpec, task_spec
from tunelab.eval.errors import EvalError
from tunelab.eval.predictions import file_answers, match_to_dataset, read_predictions
from tunelab.eval.results import Answer, LabelError
from tunelab.eval.score import score_task


def answers(pairs: list[tuple[str, str]], prompt: str = "") -> list[Answer]:
    return [Answer(id=str(i), prompt=prompt, label=label, predict=predict) for i, (predict, label) in enumerate(pairs)]


def task(**kwargs: object) -> EvalTaskSpec:
    return task_spec(name="t", dataset="d", **kwargs)


def test_classification_with_labels_and_aliases() -> None:
    spec = task(type="classification", labels=["正面", "负面"], aliases={"好评": "正面"},
                metrics=["accuracy", "macro-f1", "micro-f1"])
    score = score_task(spec, answers([("这条评论是正面的。", "正面"), ("好评", "正面"), ("负面！", "负面"),
                                      ("说不清", "负面")]))
    assert score.metrics["accuracy"] == pytest.approx(75.0)
    assert score.unextracted == ["3"]
    assert score.rows[3]["correct"] is False and score.rows[0]["predicted"] == "正面"
    assert score.details["confusion_matrix"]["负面"] == {"<unparsed>": 1, "负面": 1}


def test_choice_task_reads_letters_from_both_sides() -> None:
    spec = task(type="choice")
    score = score_task(spec, answers([("答案：B", "B"), ("The answer is (A)", "答案：C"), ("嗯", "D")]))
    assert score.metrics == {"accuracy": pytest.approx(100 / 3)}
    assert score.unextracted == ["2"]


def test_reference_that_cannot_be_read_is_an_error_naming_the_row() -> None:
    with pytest.raises(LabelError, match="row 1: the reference answer '没有字母'"):
        score_task(task(type="choice"), answers([("A", "A"), ("B", "没有字母")]))


def test_extraction_over_json_relations() -> None:
    spec = task(type="extraction", extractor={"name": "json"}, metrics=["micro-f1", "macro-f1"])
    gold = json.dumps([["公司", "位于", "北京"], ["公司", "成立于", "2010"]], ensure_ascii=False)
    score = score_task(spec, answers([('结果：[["公司", "位于", "北京"]]', gold), ("无法解析", gold)]))
    # row 0: tp1 fn1; row 1: unextracted, fn2 -> micro P 1/1, R 1/4
    assert score.metrics["micro-f1"] == pytest.approx(100 * 2 * 1 * 0.25 / 1.25)
    assert score.unextracted == ["1"]


def test_ranking_and_retrieval_kinds() -> None:
    rows = answers([("1. 甲\n2. 乙\n3. 丙", "甲\n乙\n丙"), ("乙、甲", "甲\n乙\n丙")])
    ranking = score_task(task(type="ranking", metrics=["ndcg@3", "mrr"]), rows)
    assert ranking.metrics["mrr"] == pytest.approx(1.0)  # each row's first item is relevant
    assert ranking.rows[0]["ndcg@3"] == pytest.approx(1.0) and ranking.rows[1]["ndcg@3"] < 1.0
    assert ranking.details["graded"] is True
    retrieval = score_task(task(type="retrieval", metrics=["hits@2", "hit@1"]), rows)
    assert retrieval.metrics == {"hits@2": pytest.approx(2.0), "hit@1": pytest.approx(1.0)}


def test_generation_rows_carry_every_metric() -> None:
    spec = task(type="generation", metrics=["bleu-4", "rouge-l", "exact-match", "sacrebleu"])
    score = score_task(spec, answers([("今天天气很好", "今天天气很好"), ("", "参考")]))
    assert score.rows[0]["exact-match"] == 100.0 and score.rows[1]["bleu-4"] == 0.0
    assert score.metrics["bleu-4"] == pytest.approx(50.0)
    assert score.unextracted == ["1"] and score.scored == 2


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def test_llamafactory_predictions_match_by_order_and_label(tmp_path: Path) -> None:
    expected = answers([("", "甲"), ("", "乙")])
    good = write_lines(tmp_path / "lf.jsonl", [{"prompt": "p", "predict": "x", "label": "甲"},
                                                {"prompt": "p", "predict": "y", "label": " 乙 "}])
    matched = match_to_dataset(read_predictions(good), expected, good)
    assert [a.predict for a in matched] == ["x", "y"] and matched[1].id == "1"
    other = write_lines(tmp_path / "other.jsonl", [{"predict": "x", "label": "甲"}, {"predict": "y", "label": "丙"}])
    with pytest.raises(EvalError, match="line 2: label '丙' differs"):
        match_to_dataset(read_predictions(other), expected, other)
    short = write_lines(tmp_path / "short.jsonl", [{"predict": "x", "label": "甲"}])
    with pytest.raises(EvalError, match="1 lines but the dataset has 2 rows"):
        match_to_dataset(read_predictions(short), expected, short)


def test_tunelab_predictions_match_by_id(tmp_path: Path) -> None:
    expected = [Answer(id="d:0", prompt="", label="甲", predict=""), Answer(id="d:1", prompt="", label="乙", predict="")]
    foreign = write_lines(tmp_path / "f.jsonl", [{"id": "other:0", "predict": "x", "label": "甲"}])
    with pytest.raises(EvalError, match="ids other:0 are not rows"):
        match_to_dataset(read_predictions(foreign), expected, foreign)
    partial = write_lines(tmp_path / "p.jsonl", [{"id": "d:1", "predict": "y", "label": "乙"}])
    with pytest.raises(EvalError, match="no answer for 1 of 2 rows"):
        match_to_dataset(read_predictions(partial), expected, partial)


def test_bad_predictions_files(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match="no such file"):
        read_predictions(tmp_path / "missing.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"predict": "a", "label": "b"}\n{not json\n', encoding="utf-8")
    with pytest.raises(EvalError, match="line 2: not JSON"):
        read_predictions(broken)
    no_label = write_lines(tmp_path / "nolabel.jsonl", [{"predict": "a"}])
    with pytest.raises(EvalError, match="line 1: no label field"):
        read_predictions(no_label)
    assert [a.id for a in file_answers([{"predict": "a", "label": "b"}])] == ["0"]
