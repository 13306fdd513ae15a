"""The extractor library: each extractor, its parameters, and bad specs."""

from __future__ import annotations

import pytest

from tunelab.text.extract import ExtractorError, build_extractor

PROMPT = "哪种水果是黄色的？\nA. 苹果\nB. 香蕉\nC. 西瓜\nD. 葡萄\n答案："


@pytest.mark.parametrize("text, letter", [
    ("答案：B", "B"), ("答案是 C。", "C"), ("正确答案为（Ｄ）", "D"), ("The answer is (C).", "C"),
    ("Answer: A", "A"), ("I think the answer is B because bananas are yellow", "B"), ("选A", "A"),
    ("B", "B"), ("(D)", "D"), ("C. 西瓜", "C"), ("我认为是香蕉。", "B"), ("Option D is right", "D"),
])
def test_choice_reads_chinese_and_english_phrasings(text: str, letter: str) -> None:
    assert build_extractor("choice")(text, PROMPT) == letter


def test_choice_gives_none_when_nothing_names_an_option() -> None:
    assert build_extractor("choice")("我不知道", PROMPT) is None
    assert build_extractor("choice")("苹果和香蕉都行", PROMPT) is None  # two option texts: ambiguous


def test_choice_multiple_and_letters() -> None:
    assert build_extractor({"name": "choice", "multiple": True})("答案是 C、A", PROMPT) == "AC"
    assert build_extractor({"name": "choice", "letters": "ABCDE"})("答案：E", "") == "E"
    assert build_extractor("choice")("答案：E", "") is None


def test_regex_uses_the_answer_group_and_occurrence() -> None:
    named = build_extractor({"name": "regex", "pattern": r"类别[:：]\s*(?P<answer>\S+?)[。，]"})
    assert named("分析后，类别：正面。其余", "") == "正面"
    last = build_extractor({"name": "regex", "pattern": r"(\d+)", "occurrence": "last"})
    assert last("3 then 5 then 8", "") == "8"
    ignore_case = build_extractor({"name": "regex", "pattern": "yes|no", "flags": "i"})
    assert ignore_case("YES!", "") == "YES"
    assert named("没有类别", "") is None


def test_number_json_list_text_first_line() -> None:
    assert build_extractor("number")("共 1,234.50 元，合计 12 件", "") == "12"
    assert build_extractor({"name": "number", "occurrence": "first"})("共 １,２３４.50 元", "") == "1234.5"
    assert build_extractor({"name": "json", "path": "entities[1]"})('结果：```json\n{"entities": ["甲", "乙"]}\n```', "") == "乙"
    assert build_extractor("json")("relations: [[\"a\", \"rel\", \"b\"]] done", "") == [["a", "rel", "b"]]
    assert build_extractor("json")("no json here", "") is None
    assert build_extractor("list")("1. 苹果\n2) 香蕉、西瓜；- 桃子", "") == ["苹果", "香蕉", "西瓜", "桃子"]
    assert build_extractor("text")("  hi  ", "") == "hi"
    assert build_extractor("text")("   ", "") is None
    assert build_extractor("first_line")("\n\n  第一行 \n第二行", "") == "第一行"


@pytest.mark.parametrize("spec, message", [
    ({"name": "regex", "pattern": "("}, "does not compile"),
    ({"name": "regex"}, "needs `pattern`"),
    ({"name": "regex", "pattern": "a", "flags": "x"}, "flags 'x' unknown"),
    ("nope", "unknown extractor 'nope'"),
    ({"name": "list", "sep": ","}, "has no parameter sep"),
    ({"name": "json", "path": "a..b"}, "not like a.b[0].c"),
    ({"name": "choice", "letters": "abc"}, "capital letters"),
    ({"name": "number", "occurrence": "middle"}, "first or last"),
])
def test_bad_specs_say_what_is_wrong(spec: object, message: str) -> None:
    with pytest.raises(ExtractorError, match=message.replace("(", r"\(").replace("[", r"\[")):
        build_extractor(spec)
