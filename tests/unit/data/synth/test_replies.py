"""A reply -> records in each mode, the output checks and the normalisation."""

from __future__ import annotations

import pytest

from tunelab.data.tools.synth.config import ChecksSection, NormalizeSection, ReplySection
from tunelab.data.tools.synth.replies import Checker, Rejection, json_value, unify_punctuation

JSON_MAP = {"instruction": "q", "output": "a"}


def check(text: str, reply: ReplySection | None = None, checks: ChecksSection | None = None,
          normalize: NormalizeSection | None = None, finish: str = "stop") -> list[dict[str, str]]:
    checker = Checker(reply or ReplySection(), checks or ChecksSection(), normalize or NormalizeSection())
    return checker.records(text, finish, "PROMPT")


def rejection(text: str, **kwargs: object) -> Rejection:
    with pytest.raises(Rejection) as caught:
        check(text, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_text_mode_takes_the_prompt_as_instruction() -> None:
    assert check("  答案 \n") == [{"instruction": "PROMPT", "input": "", "output": "答案"}]


def test_json_mode_maps_fields_from_fenced_or_chatty_replies() -> None:
    reply = ReplySection(mode="json", fields=JSON_MAP)
    want = [{"instruction": "问", "input": "", "output": "答"}]
    assert check('```json\n{"q": "问", "a": "答"}\n```', reply) == want
    assert check('好的，这是结果：{"q": "问", "a": "答"} 希望有帮助', reply) == want
    assert rejection('{"q": "问"}', reply=reply).kind == "missing field"
    assert rejection("没有 JSON", reply=reply).kind == "not JSON"
    assert rejection('{"q": "问", "a": " "}', reply=reply).kind == "empty output"


def test_pairs_mode_gives_several_records_per_reply() -> None:
    reply = ReplySection(mode="pairs", fields={**JSON_MAP, "input": "ctx"})
    text = '{"pairs": [{"q": "1+1?", "a": "2"}, {"q": "2+2?", "ctx": "算术", "a": "4"}]}'
    assert check(text, reply) == [{"instruction": "1+1?", "input": "", "output": "2"},
                                  {"instruction": "2+2?", "input": "算术", "output": "4"}]
    bad = rejection('[{"q": "1+1?", "a": "2"}, "stray"]', reply=reply)
    assert bad.kind == "not an object" and "item 2" in bad.detail


def test_truncated_replies_are_rejected_unless_allowed() -> None:
    assert rejection("half an answ", finish="length").kind == "truncated"
    assert check("half an answ", checks=ChecksSection(reject_truncated=False), finish="length")[0]["output"] == \
        "half an answ"


def test_regex_and_schema_checks() -> None:
    checks = ChecksSection(regex=r"^答案[:：]")
    assert check("答案：42", checks=checks)[0]["output"] == "答案：42"
    assert rejection("42", checks=checks).kind == "regex"
    schema = {"type": "object", "required": ["q", "a"], "properties": {"a": {"type": "string", "minLength": 2}}}
    checks = ChecksSection(json_schema=schema)
    reply = ReplySection(mode="json", fields=JSON_MAP)
    assert check('{"q": "问", "a": "答案"}', reply, checks)[0]["output"] == "答案"
    why = rejection('{"q": "问", "a": "答"}', reply=reply, checks=checks)
    assert why.kind == "schema" and "$.a" in why.detail


def test_punctuation_is_unified_only_when_asked() -> None:
    assert unify_punctuation("你好，世界！（测试）ＡＢ。", "halfwidth") == "你好,世界!(测试)AB."
    assert unify_punctuation("你好,世界!(测试) Pi is 3.14, ok?", "fullwidth") == "你好，世界！（测试） Pi is 3.14, ok?"
    assert unify_punctuation("你好,世界", "keep") == "你好,世界"
    normalize = NormalizeSection(punctuation="fullwidth", strip=True)
    assert check(" 好的,谢谢 ", normalize=normalize)[0]["output"] == "好的，谢谢"
    assert check(" x ", normalize=NormalizeSection(strip=False))[0]["output"] == " x "


def test_json_value_tries_the_whole_text_first() -> None:
    assert json_value("[1, 2]") == [1, 2]
    with pytest.raises(Rejection):
        json_value("{not json}")
