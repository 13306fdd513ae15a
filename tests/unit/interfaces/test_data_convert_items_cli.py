"""`tunelab data convert` with --extract-all and --each, as the reading-comprehension story's pandas code does it:
one 选项 cell holds several questions of a passage, one 答案 cell their answers ("1.B 2.C 3.简答 4.A"); the
multiple-choice questions are laid out with their options and answer, one output per passage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.interfaces.cli import main

Capture = pytest.CaptureFixture[str]

INSTRUCTION = "你是⼀个⾼考选择题出题专家，你将根据阅读文本，出4道单项选择题，包含题目选项，以及对应的答案。"
# one multiple-choice question: its first line (score left out), then A. B. C. D. up to the next question or the end;
# a short-answer question has no "A." on its next line, so the pattern skips it
QUESTION = (r"\d+[.．]\s*(?P<question>[^\n]+?)\s*(?:[（(]\d+分[）)])?\s*\n\s*A[.．](?P<a>.+?)B[.．](?P<b>.+?)"
            r"C[.．](?P<c>.+?)D[.．](?P<d>.+?)(?=\n\s*\d+[.．]|$)")
ANSWER = r"\d+[.．]\s*(?P<answer>[A-D])(?![A-Za-z])"  # "3.简答：略" is no letter answer: skipped
EACH = r"{n}.{question}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\n答案:{answer}"


def exam_workbook(path: Path) -> Path:
    """The story's sheet: several questions per 选项 cell (full-width and ASCII dots, a short-answer question between
    them), their answers in 答案; a passage with only a short-answer question; one whose answers are missing one."""
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["序号", "阅读文本", "选项", "答案"])
    sheet.append([1, "材料一：人工智能……",
                  "1．下列对材料一的理解，不正确的一项是（3分）\nA．甲说法\nB．乙说法\nC．丙说法\nD．丁说法\n"
                  "2.根据材料，下列说法正确的一项是(3分)\nA. 一\nB. 二\nC. 三\nD. 四\n"
                  "3．请简要分析文中画线句子的作用。（4分）\n"
                  "4．下列对作者写作意图的理解，正确的一项是（3分）\nA．子\nB．丑\nC．寅\nD．卯",
                  "1.B 2.C\n3.简答：略\n4. A"])
    sheet.append([2, "材料二：……", "1．简要概括材料的主要观点。（6分）", "1.略"])
    sheet.append([3, "材料三：……", "1．下列说法不正确的一项是（3分）\nA．其一\nB．其二\nC．其三\nD．其四", "1.D"])
    sheet.append([4, "材料四：……", "1．第一问（3分）\nA．a\nB．b\nC．c\nD．d\n2．第二问（3分）\nA．e\nB．f\nC．g\nD．h",
                  "1.A"])
    book.save(path)
    return path


def convert(book: Path, out: Path, *extra: str) -> int:
    """The story's conversion in one command, with extra flags."""
    return main(["data", "convert", str(book), "--to", "alpaca", "--extract-all", f"选项={QUESTION}",
                 "--extract-all", f"答案={ANSWER}", "--each", f"题目={EACH}", "--set", f"instruction={INSTRUCTION}",
                 "--map", "input=阅读文本,output=题目", "--out", str(out), *extra])


def test_the_story_sheet_converts_every_question_of_a_cell(tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "cn.json"
    assert convert(exam_workbook(tmp_path / "训练集-语文.xlsx"), out) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == [
        {"instruction": INSTRUCTION, "input": "材料一：人工智能……",
         "output": "1.下列对材料一的理解，不正确的一项是\nA. 甲说法\nB. 乙说法\nC. 丙说法\nD. 丁说法\n答案:B\n"
                   "2.根据材料，下列说法正确的一项是\nA. 一\nB. 二\nC. 三\nD. 四\n答案:C\n"
                   "3.下列对作者写作意图的理解，正确的一项是\nA. 子\nB. 丑\nC. 寅\nD. 卯\n答案:A"},
        {"instruction": INSTRUCTION, "input": "材料三：……",
         "output": "1.下列说法不正确的一项是\nA. 其一\nB. 其二\nC. 其三\nD. 其四\n答案:D"}]
    assert capsys.readouterr().out.splitlines() == [
        f"wrote 2 rows to {out} (alpaca)",
        "2 rows not matched by --extract-all 选项, 答案, not written; pass --keep-unmatched to keep them: "
        "sheet rows 3, 5"]


def test_each_fields_serve_templates_and_where_and_keep_unmatched_leaves_them_empty(tmp_path: Path,
                                                                                   capsys: Capture) -> None:
    out = tmp_path / "cn.jsonl"
    book = exam_workbook(tmp_path / "cn.xlsx")
    assert main(["data", "convert", str(book), "--to", "alpaca", "--extract-all", f"选项={QUESTION}",
                 "--each", "问=({n}){question}", "--each", "答={d}", "--template", "instruction=<{问}>",
                 "--template", "output={答}", "--where", "问!~第二问", "--keep-unmatched", "--keep-empty", "--out",
                 str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["instruction"] for row in rows] == [
        "<(1)下列对材料一的理解，不正确的一项是\n(2)根据材料，下列说法正确的一项是\n(3)下列对作者写作意图的理解，正确的一项是>",
        "<>", "<(1)下列说法不正确的一项是>"]
    assert rows[0]["output"] == "丁说法\n四\n卯"
    printed = capsys.readouterr().out
    assert "1 rows filtered out by --where 问!~第二问" in printed
    assert "1 rows not matched by --extract-all 选项, kept (--keep-unmatched): sheet rows 3" in printed


@pytest.mark.parametrize(("flags", "message"), [
    (["--extract-all", "选项=(?P<q>.+?A[.．]", "--each", "题=x"],
     "--extract-all 选项: not a valid regular expression: missing ), unterminated subpattern at character 1"),
    (["--extract-all", "选项=A[.．](.+)", "--each", "题=x"],
     "--extract-all 选项: the pattern has no named group; name each part you want as (?P<name>...)"),
    (["--extract-all", "选项=(?P<n>.)", "--each", "题=x"], "--extract-all 选项: the group name 'n' is the item number"),
    (["--extract-all", f"选项={QUESTION}", "--each", "题={questoin}"],
     "--each 题: placeholder {questoin} is not a group of the --extract-all patterns; they are: question, a, b, c, d, "
     "and {n} the item number; did you mean question?; correct the placeholder"),
    (["--extract-all", f"选项={QUESTION}", "--each", "答案={a}"],
     "--each 答案: the field '答案' is also a column; give the --each field another name"),
    (["--extract-all", f"选项={QUESTION}", "--each", "题={a}", "--each", "题={b}"],
     "--each 题: the field '题' is already given by --each"),
    (["--extract-all", f"选项={QUESTION}", "--each", "题={a"], "--each 题: unbalanced '{' at character 1"),
    (["--each", "题={a}"], "--each needs --extract-all; give --extract-all COLUMN=REGEX for the items"),
    (["--extract-all", f"选项={QUESTION}"], "--extract-all needs --each"),
    (["--extract-all", "选项目=(?P<q>.)", "--each", "题={q}"],
     "--extract-all 选项目=... names no column '选项目'; the columns are: 序号, 阅读文本, 选项, 答案; did you mean 选项?"),
    (["--extract-all", f"选项={QUESTION}", "--each", "items={a}", "--template", "output={itmes}"],
     "placeholder {itmes} names no column 'itmes'; the columns are: 序号, 阅读文本, 选项, 答案; the extracted fields are: "
     "items; did you mean items?"),
])
def test_bad_item_rules_are_clear_errors(tmp_path: Path, capsys: Capture, flags: list[str], message: str) -> None:
    book = exam_workbook(tmp_path / "cn.xlsx")
    code = main(["data", "convert", str(book), "--to", "alpaca", "--set", "instruction=x", *flags,
                 *([] if "--template" in flags else ["--map", "output=阅读文本"]), "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and message in err, err
    assert not (tmp_path / "o.json").exists()


def test_no_row_matched_says_which_flag(tmp_path: Path, capsys: Capture) -> None:
    book = exam_workbook(tmp_path / "cn.xlsx")
    assert main(["data", "convert", str(book), "--to", "alpaca", "--extract-all", "选项=(?P<q>第九问)", "--each",
                 "题={q}", "--map", "instruction=阅读文本,output=题", "--out", str(tmp_path / "o.json")]) == 2
    assert ("no rows to write: of 4 rows, 4 not matched by --extract-all (sheet rows 2, 3, 4, 5); check the "
            "--extract-all patterns against those rows, or pass --keep-unmatched") in capsys.readouterr().err
