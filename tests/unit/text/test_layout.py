"""Layouts of generated answers: a regex with named groups (one item or several in a row) or a JSON schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tunelab.text.layout import LayoutError, regex_layout, schema_layout

ITEM = (r"(?P<number>\d+)\s*[.、]\s*(?P<question>[^\n]*)\n\s*A[.、]\s*(?P<a>[^\n]*)\n\s*B[.、]\s*(?P<b>[^\n]*)\n"
        r"\s*C[.、]\s*(?P<c>[^\n]*)\n\s*D[.、]\s*(?P<d>[^\n]*)\n\s*(?:答案|answer)\s*[:：]\s*(?P<answer>[A-D]?)")


def item(number: int, question: str = "作者的观点是什么？", answer: str = "B") -> str:
    return f"{number}. {question}\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案：{answer}"


def test_one_item_matches_and_fills_every_field() -> None:
    verdict = regex_layout(ITEM).check(item(1))
    assert verdict.ok and verdict.why == ""
    assert verdict.fields == dict.fromkeys(["number", "question", "a", "b", "c", "d", "answer"], True)


def test_reasons_name_what_is_wrong() -> None:
    layout = regex_layout(ITEM)
    assert layout.check("").why == "empty answer"
    assert layout.check("我不会出题").why == "does not match format_regex"
    assert layout.check("好的，题目如下：\n" + item(1)).why == "text before the layout: '好的，题目如下：'"
    empty = layout.check(item(1, answer=""))
    assert not empty.ok and empty.why == "answer empty" and empty.fields["answer"] is False
    assert empty.fields["question"] is True


def test_items_in_a_row() -> None:
    layout = regex_layout(ITEM, items=4)
    four = "\n\n".join(item(n) for n in range(1, 5))
    assert layout.check(four).ok
    three = "\n\n".join(item(n) for n in range(1, 4))
    assert layout.check(three).why == "3 items, 4 expected"
    stray = item(1) + "\n解析：略\n" + "\n".join(item(n) for n in range(2, 5))
    assert layout.check(stray).why == "text between items 1 and 2: '解析：略'"
    blank = "\n".join([item(1), item(2, question=" "), item(3), item(4)])
    verdict = layout.check(blank)
    assert verdict.why == "item 2: question empty" and verdict.fields["question"] is False
    assert verdict.fields["answer"] is True
    assert layout.check("无").why == "no item matches format_regex (4 expected)"


def test_bad_regexes() -> None:
    with pytest.raises(LayoutError, match="does not compile"):
        regex_layout("(?P<q>")
    with pytest.raises(LayoutError, match="names no field"):
        regex_layout(r"\d+\..+")


SCHEMA = {"type": "array", "minItems": 1, "items": {
    "type": "object", "required": ["question", "options", "answer"],
    "properties": {"question": {"type": "string", "minLength": 1},
                   "options": {"type": "array", "minItems": 4, "maxItems": 4},
                   "answer": {"enum": ["A", "B", "C", "D"]}}}}


def test_schema_layout(tmp_path: Path) -> None:
    pytest.importorskip("jsonschema")
    good = [{"question": "q?", "options": ["a", "b", "c", "d"], "answer": "C"}]
    layout = schema_layout(SCHEMA)
    assert layout.fields == ("question", "options", "answer")
    assert layout.check("```json\n" + json.dumps(good) + "\n```").ok
    bad = layout.check(json.dumps([{"question": "q?", "options": ["a", "b"], "answer": "E"}]))
    assert not bad.ok and bad.why.startswith("$[0]") and bad.fields["question"] is True
    assert layout.check("题目如下：[]").why == "not JSON: Expecting value (line 1 column 1)"
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA), encoding="utf-8")
    assert schema_layout(str(path)).check(json.dumps(good)).ok
    with pytest.raises(LayoutError, match="not a valid JSON schema"):
        schema_layout({"type": "nonsense"})
    with pytest.raises(LayoutError, match="does not exist"):
        schema_layout(str(tmp_path / "missing.json"))


def test_schema_without_jsonschema_says_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    monkeypatch.setitem(sys.modules, "jsonschema.exceptions", None)
    monkeypatch.setitem(sys.modules, "jsonschema.validators", None)
    with pytest.raises(LayoutError, match="needs the jsonschema package, which is not installed: pip install"):
        schema_layout(SCHEMA)
