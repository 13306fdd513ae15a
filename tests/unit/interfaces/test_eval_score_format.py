"""The question-generation story: generated exam items checked for their layout (question, four options,
answer) with `tunelab eval score --metrics format,...`, next to BLEU/ROUGE, failing rows listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.config.errors import ConfigError
from tunelab.config.load import build
from tunelab.interfaces.cli import main

ITEM = (r"(?P<number>\d+)\s*[.、]\s*(?P<question>[^\n]*)\n\s*A[.、]\s*(?P<a>[^\n]*)\n\s*B[.、]\s*(?P<b>[^\n]*)\n"
        r"\s*C[.、]\s*(?P<c>[^\n]*)\n\s*D[.、]\s*(?P<d>[^\n]*)\n\s*(?:答案|answer)\s*[:：]\s*(?P<answer>[A-D]?)")


def items(count: int = 4, answer: str = "B") -> str:
    return "\n".join(f"{n}. 文中画线句子的含义是什么？\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案：{answer}"
                     for n in range(1, count + 1))


def write(tmp_path: Path) -> Path:
    rows = [{"prompt": "阅读文本……出4道单项选择题", "label": items(), "predict": items()},
            {"prompt": "阅读文本……出4道单项选择题", "label": items(), "predict": items(3)},
            {"prompt": "阅读文本……出4道单项选择题", "label": items(), "predict": items(answer="")},
            {"prompt": "阅读文本……出4道单项选择题", "label": items(), "predict": "好的，以下是题目：\n" + items()}]
    path = tmp_path / "generated_predictions.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_format_next_to_bleu_and_rouge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, rows_out = tmp_path / "scores.json", tmp_path / "rows.jsonl"
    code = main(["eval", "score", str(write(tmp_path)), "--metrics", "format,format:answer,bleu-4,rouge-l",
                 "--format-regex", ITEM, "--format-items", "4", "--json", str(out), "--rows", str(rows_out)])
    assert code == 0
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["metrics"]["format"] == 25.0
    assert summary["metrics"]["format:answer"] == 75.0  # only row 2 leaves an answer empty
    assert summary["metrics"]["bleu-4"] > 0 and summary["metrics"]["rouge-l"] > 0
    assert summary["format"]["failed"] == [
        {"id": "1", "why": "3 items, 4 expected"},
        {"id": "2", "why": "item 1: answer empty"},
        {"id": "3", "why": "text before item 1: '好的，以下是题目：'"}]
    assert summary["format"]["fields"]["question"] == 100.0
    printed = capsys.readouterr().out
    assert "format: 25.0000" in printed and "format: 3 of 4 answers not in the layout" in printed
    assert "  2: item 1: answer empty" in printed
    rows = [json.loads(line) for line in rows_out.read_text(encoding="utf-8").splitlines()]
    assert [row.get("format_error") for row in rows] == [None, "3 items, 4 expected", "item 1: answer empty",
                                                         "text before item 1: '好的，以下是题目：'"]


@pytest.mark.parametrize("args, message", [
    (["--metrics", "format,bleu-4"], "metrics format need the layout: set format_regex (named groups) or "
                                     "format_schema"),
    (["--metrics", "format:answr", "--format-regex", ITEM], "metrics format:answr: no such field; the layout's "
                                                              "fields are number, question, a, b, c, d, answer"),
    (["--metrics", "format", "--format-regex", "(?P<q>"], "format_regex '(?P<q>' does not compile"),
    (["--metrics", "bleu-4", "--format-regex", ITEM], "no format metric is asked; add format to metrics"),
    (["--metrics", "format", "--format-items", "4"], "format_items counts the items of format_regex"),
    (["--metrics", "format", "--format-regex", ITEM, "--format-schema", "{}"], "give one layout, not both"),
])
def test_layout_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                              message: str) -> None:
    assert main(["eval", "score", str(write(tmp_path)), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_layout_keys_belong_to_generation_tasks() -> None:
    tasks = [{"name": "qg", "type": "generation", "dataset": "d", "metrics": ["format", "rouge-l"],
              "format_schema": "missing.json"},
             {"name": "c", "type": "classification", "dataset": "d", "format_regex": "(?P<a>.)"}]
    with pytest.raises(ConfigError) as excinfo:
        build({"model_name_or_path": "m", "output_dir": "o", "eval_tasks": tasks}, purpose="eval")
    messages = [f"{p.key}: {p.message}" for p in excinfo.value.problems]
    assert ("eval_tasks[1] (c): format_regex, format_items and format_schema apply to generation tasks only; "
            "remove them") in messages
    assert any(m.startswith("eval_tasks[0] (qg): format_schema") for m in messages)


def test_format_items_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "score", str(write(tmp_path)), "--metrics", "format", "--format-regex", ITEM,
              "--format-items", "0"])
    assert "'0' is not a whole number above 0" in capsys.readouterr().err


def test_format_by_json_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("jsonschema")
    schema = {"type": "array", "minItems": 4, "items": {
        "type": "object", "required": ["question", "options", "answer"],
        "properties": {"question": {"type": "string", "minLength": 1},
                       "options": {"type": "array", "minItems": 4, "maxItems": 4},
                       "answer": {"enum": ["A", "B", "C", "D"]}}}}
    (tmp_path / "item.schema.json").write_text(json.dumps(schema), encoding="utf-8")
    good = [{"question": f"q{n}?", "options": ["a", "b", "c", "d"], "answer": "A"} for n in range(4)]
    bad = [dict(good[0], answer="E")] + good[1:]
    rows = [{"predict": json.dumps(good), "label": json.dumps(good)},
            {"predict": "```json\n" + json.dumps(good) + "\n```", "label": json.dumps(good)},
            {"predict": json.dumps(bad), "label": json.dumps(good)},
            {"predict": "题目：" + json.dumps(good), "label": json.dumps(good)}]
    path = tmp_path / "generated_predictions.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "scores.json"
    assert main(["eval", "score", str(path), "--metrics", "format,format:answer,rouge-l",
                 "--format-schema", str(tmp_path / "item.schema.json"), "--json", str(out)]) == 0
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["metrics"]["format"] == 50.0 and summary["metrics"]["format:answer"] == 75.0
    assert [f["id"] for f in summary["format"]["failed"]] == ["2", "3"]
    assert summary["format"]["failed"][0]["why"].startswith("$[0].answer: 'E' is not one of")
    assert summary["format"]["failed"][1]["why"].startswith("not JSON:")
