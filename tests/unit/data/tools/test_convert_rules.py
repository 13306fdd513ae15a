"""The row rules of `tunelab data convert`: conditions, templates, extraction and the names they use."""

from __future__ import annotations

import pytest

from tunelab.data.errors import DataError
from tunelab.data.tools.convert_rules import (check_names, parse_condition, parse_extractions, parse_fixed,
                                              parse_rules, parse_templates, unescape)


@pytest.mark.parametrize(("condition", "cell", "holds"), [
    ("题型=选择题", " 选择题 ", True), ("题型=选择题", "简答题", False), ("题型!=选择题", "简答题", True),
    ("备注=", "", True), ("备注!=", "  ", False), ("选项~[A-D][.．]", "x\nB．y", True), ("选项!~^\\d", "1.", False),
    ("a=b=c", "b=c", True),  # the first operator splits: column a, value b=c
])
def test_conditions(condition: str, cell: str, holds: bool) -> None:
    assert parse_condition(condition).holds(cell) is holds


def test_condition_regex_errors_name_the_condition() -> None:
    with pytest.raises(DataError, match=r"--where 选项~\[A-D: not a valid regular expression: unterminated character "
                                        r"set at character 1"):
        parse_condition("选项~[A-D")


def test_templates_fill_placeholders_and_keep_doubled_braces() -> None:
    template = parse_templates([r"output={题目}\n{{{a}}}\t{题目}"])["output"]
    assert template.names() == ["题目", "a", "题目"]
    assert template.render({"题目": "Q", "a": "x"}) == "Q\n{x}\tQ"
    with pytest.raises(DataError, match="--template output: empty '{}' at character 3"):
        parse_templates(["output=ab{}"])
    with pytest.raises(DataError, match="unbalanced '}' at character 2"):
        parse_templates(["output=a}b"])


def test_fixed_text_keeps_commas_and_equals_and_reads_escapes() -> None:
    assert parse_fixed([r"instruction=a=b, c\nd\\n"]) == {"instruction": "a=b, c\nd\\n"}
    assert unescape(r"\d\t") == "\\d\t"
    with pytest.raises(DataError, match="--set gives system twice"):
        parse_fixed(["system=a", "system=b"])
    with pytest.raises(DataError, match="--set names an unknown field 'history'"):
        parse_fixed(["history=x"])


def test_extraction_strips_groups_and_fills_optional_ones() -> None:
    extraction = parse_extractions([r"选项=(?P<q>.+?)A[.．](?P<a>.+?)(?:答案[:：](?P<ans>[A-D]))?$"])[0]
    assert extraction.fields() == ["q", "a", "ans"]
    assert extraction.apply("1. 问题 \nA．甲\n") == {"q": "1. 问题", "a": "甲", "ans": ""}
    assert extraction.apply("没有选项") is None
    with pytest.raises(DataError, match="the group name 'q' is used twice"):
        parse_extractions(["选项=(?P<q>.)", "答案=(?P<q>.)"])


def test_check_names_refuses_a_group_named_like_a_column() -> None:
    rules = parse_rules([], [], ["选项=(?P<答案>[A-D])"], [])
    with pytest.raises(DataError, match="--extract 选项: the group name '答案' is also a column"):
        check_names(rules, {}, ["选项", "答案"], "x.xlsx")
    rules = parse_rules([], ["output={ans}"], ["选项=(?P<ans>[A-D])"], ["ans=A"])
    check_names(rules, {"instruction": "ans"}, ["选项"], "x.xlsx")  # extracted fields serve --map, templates, --where
