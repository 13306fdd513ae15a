"""`tunelab data convert` with --set, --template, --extract and --where, as the reading-comprehension story uses it:
an exam spreadsheet whose option column holds the question, four options and the answer in free text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.interfaces.cli import main

Capture = pytest.CaptureFixture[str]

# the story's fixed requirements (get_prompt_cn without the reading text, which goes to input)
INSTRUCTION = ("你是⼀个⾼考选择题出题专家，你出的题有⼀定深度，你将根据阅读文本，出4道单项选择题，包含题目选项，以及对应的答案，"
               "注意：不⽤给出原文，每道题由1个问题和4个选项组成，仅存在1个正确答案，请严格按照要求执行。\n\n### 回答要求\n"
               "(1)理解文中重要概念的含义\n(2)理解文中重要句子的含意\n(3)分析论点、论据和论证方法")
# the question (number and score left out), four options after A. B. C. D. (or A． A、), then the answer letter
CHOICE = (r"^\s*\d+[.．、]\s*(?P<question>.+?)\s*(?:[（(]\d+分[）)])?\s*A[.．、](?P<a>.+?)B[.．、](?P<b>.+?)"
          r"C[.．、](?P<c>.+?)D[.．、](?P<d>.+?)答案[:：]\s*(?P<answer>[A-D])")
OUTPUT = r"{question}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\n答案：{answer}"


def exam_workbook(path: Path) -> Path:
    """训练集-语文.xlsx as the story has it: 阅读文本 and 选项 columns, full-width dots, a short-answer question, an
    English row, a blank row, and options with one missing."""
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["序号", "科目", "阅读文本", "选项"])
    sheet.append([1, "语文", "材料一：人工智能……", "1．下列对材料相关内容的理解，不正确的一项是（3分）\nA．甲说法\n"
                  "B．乙说法\nC．丙说法\nD．丁说法\n答案：C"])
    sheet.append([2, "英语", "Passage A ...", "21. What is the text about?\nA. x\nB. y\nC. z\nD. w\nAnswer: B"])
    sheet.append([3, "语文", "材料二：……", "2．请简要分析文中画线句子的作用。（4分）\n答案：略"])
    sheet.append([])
    sheet.append([5, "语文", "材料三：……", "3、下列对作者写作意图的分析，正确的一项是\nA、其一\nB、其二\nC、其三\nD、其四\n答案：A"])
    sheet.append([6, "语文", "材料四：……", "4．下列说法正确的一项是（3分）\nA．一\nB．二\nC．三\n答案：B"])
    book.save(path)
    return path


def convert(book: Path, out: Path, *extra: str) -> int:
    """The story's one command, with extra flags."""
    return main(["data", "convert", str(book), "--to", "alpaca", "--where", "科目=语文", "--extract", f"选项={CHOICE}",
                 "--set", f"instruction={INSTRUCTION}", "--map", "input=阅读文本", "--template", f"output={OUTPUT}",
                 "--out", str(out), *extra])


def test_the_story_spreadsheet_converts_in_one_command(tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "cn.json"
    assert convert(exam_workbook(tmp_path / "训练集-语文.xlsx"), out) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == [
        {"instruction": INSTRUCTION, "input": "材料一：人工智能……",
         "output": "下列对材料相关内容的理解，不正确的一项是\nA. 甲说法\nB. 乙说法\nC. 丙说法\nD. 丁说法\n答案：C"},
        {"instruction": INSTRUCTION, "input": "材料三：……",
         "output": "下列对作者写作意图的分析，正确的一项是\nA. 其一\nB. 其二\nC. 其三\nD. 其四\n答案：A"}]
    assert capsys.readouterr().out.splitlines() == [
        f"wrote 2 rows to {out} (alpaca)",
        "1 rows filtered out by --where 科目=语文",
        "2 rows not matched by --extract 选项, not written; pass --keep-unmatched to keep them: sheet rows 4, 7"]


def test_keep_unmatched_writes_the_missed_rows_with_empty_fields(tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "cn.jsonl"
    assert convert(exam_workbook(tmp_path / "cn.xlsx"), out, "--keep-unmatched") == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["input"] for row in rows] == ["材料一：人工智能……", "材料二：……", "材料三：……", "材料四：……"]
    assert rows[1]["output"] == "\nA. \nB. \nC. \nD. \n答案："
    assert "2 rows not matched by --extract 选项, kept (--keep-unmatched): sheet rows 4, 7" in capsys.readouterr().out


def test_where_on_an_extracted_field_and_set_without_map(tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "a.json"
    book = exam_workbook(tmp_path / "cn.xlsx")
    assert main(["data", "convert", str(book), "--to", "sharegpt", "--extract", f"选项={CHOICE}", "--where",
                 "answer!~[AB]", "--set", "system=出题专家", "--template", "instruction={阅读文本}",
                 "--template", "output={answer}", "--out", str(out), "--name", "cn"]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == [{"conversations": [
        {"from": "human", "value": "材料一：人工智能……"}, {"from": "gpt", "value": "C"}], "system": "出题专家"}]
    printed = capsys.readouterr().out
    assert "1 rows filtered out by --where answer!~[AB]" in printed  # row 6; rows 3, 4 and 7 the pattern missed
    assert "3 rows not matched by --extract 选项" in printed
    registry = json.loads((tmp_path / "dataset_info.json").read_text(encoding="utf-8"))
    assert registry["cn"]["columns"]["system"] == "system"


def test_an_unknown_placeholder_names_it_and_the_columns(tmp_path: Path, capsys: Capture) -> None:
    book = exam_workbook(tmp_path / "cn.xlsx")
    code = main(["data", "convert", str(book), "--to", "alpaca", "--extract", f"选项={CHOICE}", "--set",
                 "instruction=出题", "--template", "output={questoin}\\n{选想}", "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (f"tunelab: error: {book} (sheet Sheet): --template output: placeholder {{questoin}} names "
                           "no column 'questoin'; the columns are: 序号, 科目, 阅读文本, 选项; the extracted fields are: "
                           "question, a, b, c, d, answer; did you mean question?; correct the placeholder")
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize(("flags", "message"), [
    (["--extract", "选项=(?P<q>.+?A[.．]"],
     "--extract 选项: not a valid regular expression: missing ), unterminated subpattern at character 1 of "
     "'(?P<q>.+?A[.．]'; correct the pattern (Python re syntax; named parts are written (?P<name>...))"),
    (["--extract", "选项=A[.．](.+)"], "--extract 选项: the pattern has no named group; name each part you want as "
                                    "(?P<name>...)"),
    (["--extract", "选项目=(?P<q>.+)"], "--extract 选项目=... names no column '选项目'; the columns are: 序号, 科目, 阅读文本, "
                                   "选项; did you mean 选项?; correct the column name before '='"),
    (["--where", "科目"], "--where '科目' is not a condition; write COLUMN=VALUE, COLUMN!=VALUE, COLUMN~REGEX or "
                        "COLUMN!~REGEX, e.g. --where 题型=选择题"),
    (["--where", "课目=语文"], "--where 课目=语文 names no column '课目'"),
    (["--template", "output={选项"], "--template output: unbalanced '{' at character 1; name a column or an "
                                     "extracted field as {NAME}; write {{ and }} for braces"),
    (["--set", "output=x"], "output is given by --map and by --set or --template; give each field once"),
    (["--set", "instrution=x"], "--set names an unknown field 'instrution'; did you mean instruction?"),
])
def test_bad_rules_are_clear_errors(tmp_path: Path, capsys: Capture, flags: list[str], message: str) -> None:
    book = exam_workbook(tmp_path / "cn.xlsx")
    code = main(["data", "convert", str(book), "--to", "alpaca", "--map", "instruction=阅读文本,output=选项",
                 *flags, "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and message in err
    assert not (tmp_path / "o.json").exists()


def test_nothing_left_to_write_says_why(tmp_path: Path, capsys: Capture) -> None:
    book = exam_workbook(tmp_path / "cn.xlsx")
    assert main(["data", "convert", str(book), "--to", "alpaca", "--where", "科目=数学", "--map",
                 "instruction=阅读文本,output=选项", "--out", str(tmp_path / "o.json")]) == 2
    assert "no rows to write: of 5 rows, 5 filtered out by --where; check the --where conditions" in \
        capsys.readouterr().err
