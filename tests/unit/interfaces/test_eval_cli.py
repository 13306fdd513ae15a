"""`tunelab eval score` and `tunelab eval extract` through the real entry point (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.eval.metrics.text import lf_row
from tunelab.interfaces.cli import main

ROWS = [{"prompt": "p1", "predict": "今天天气很好，我们去公园。", "label": "今天天气不错，我们去公园玩吧。"},
        {"prompt": "p2", "predict": "", "label": "参考答案"},
        {"prompt": "p3", "predict": "The cat sat on the mat.", "label": "The cat is on the mat."}]


def predictions(tmp_path: Path, rows: list[dict] = ROWS) -> Path:
    path = tmp_path / "generated_predictions.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_score_prints_and_writes_llamafactory_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scores.json"
    rows_out = tmp_path / "rows.jsonl"
    code = main(["eval", "score", str(predictions(tmp_path)), "--metrics", "bleu-4,rouge-1,rouge-2,rouge-l",
                 "--json", str(out), "--rows", str(rows_out)])
    assert code == 0
    expected = [lf_row(r["predict"], r["label"]) for r in ROWS]
    summary = json.loads(out.read_text(encoding="utf-8"))
    for name in ("bleu-4", "rouge-1", "rouge-2", "rouge-l"):
        assert summary["metrics"][name] == pytest.approx(sum(e[name] for e in expected) / 3, abs=1e-4)
    assert summary["scored"] == 3 and summary["unextracted_ids"] == ["1"]
    printed = capsys.readouterr().out
    assert f"bleu-4: {summary['metrics']['bleu-4']:.4f}" in printed and "3 scored, 1 unextracted (1)" in printed
    assert len(rows_out.read_text(encoding="utf-8").splitlines()) == 3


def test_score_rejects_metrics_that_do_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "score", str(predictions(tmp_path)), "--metrics", "accuracy,bleu-4"]) == 2
    assert "'accuracy' does not fit a generation task" in capsys.readouterr().err


def test_score_names_the_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = predictions(tmp_path, [{"predict": "a", "label": "b"}, {"predict": "a"}])
    assert main(["eval", "score", str(path)]) == 1
    assert f"{path} line 2: no label field" in capsys.readouterr().err


def test_score_classification_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = predictions(tmp_path, [{"predict": "正面。", "label": "正面"}, {"predict": "我觉得是负面的", "label": "负面"},
                                  {"predict": "不知道", "label": "正面"}])
    assert main(["eval", "score", str(path), "--type", "classification", "--labels", "正面,负面"]) == 0
    out = capsys.readouterr().out
    assert "accuracy: 66.6667" in out and "1 unextracted (2)" in out


def test_extract_prints_json_or_says_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "extract", "--extractor", "choice", "--text", "经过分析，答案是（C）"]) == 0
    assert capsys.readouterr().out == '"C"\n'
    spec = '{"name": "regex", "pattern": "类别[:：](?P<answer>\\\\S+)"}'
    assert main(["eval", "extract", "--extractor", spec, "--text", "类别：正面"]) == 0
    assert capsys.readouterr().out == '"正面"\n'
    assert main(["eval", "extract", "--extractor", "number", "--text", "none"]) == 1
    assert capsys.readouterr().out == "(nothing extracted)\n"
    assert main(["eval", "extract", "--extractor", '{"name": "regex", "pattern": "("}', "--text", "x"]) == 2
    assert "--extractor: regex pattern '(' does not compile" in capsys.readouterr().err


def test_eval_with_a_missing_benchmark_folder_is_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "eval.yaml"
    config.write_text(f"model_name_or_path: not/loaded\noutput_dir: {tmp_path / 'out'}\neval_tasks:\n"
                      f"  - {{name: m, type: choice_logits, task_dir: {tmp_path / 'nope'}}}\n", encoding="utf-8")
    assert main(["eval", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"task_dir: {tmp_path / 'nope'} is not a folder" in err and "Traceback" not in err


def test_eval_judge_points_to_the_task_kind_and_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    # issue 21: `tunelab eval judge` said "judge: no such file"
    assert main(["eval", "judge"]) == 1
    err = capsys.readouterr().err
    assert "no such file" not in err and "Traceback" not in err
    assert "eval judge: LLM-judge evaluation is a task kind, not a command: add a task with type: judge" in err
    assert "the eval commands are: tunelab eval CONFIG.yaml [key=value ...] [--compare]; tunelab eval score " \
           "PREDICTIONS.jsonl; tunelab eval extract --extractor NAME --text TEXT" in err
    assert main(["eval", "scor"]) == 1
    assert "there is no eval command 'scor' and no config file of that name; did you mean score?" in \
        capsys.readouterr().err
    assert main(["eval", "missing.yaml"]) == 2
    assert "missing.yaml: no such file" in capsys.readouterr().err
