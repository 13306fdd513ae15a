"""Tool descriptions and function calls give LLaMA-Factory 0.9.5's exact text, per tool format."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from tunelab.text.tool_text import TOOL_FORMATS, function_text, tools_text

GOLDEN = json.loads((Path(__file__).parents[2] / "fixtures" / "tool_text_golden.json").read_text(encoding="utf-8"))
TODAY = date.fromisoformat(GOLDEN["date"])
CASES = GOLDEN["cases"]


def _words(value: list[str] | None) -> tuple[str, str] | None:
    return tuple(value) if value is not None else None


def _ours(case: dict) -> str:
    if case["kind"] == "tools":
        return tools_text(case["format"], case["tools"], today=TODAY)
    return function_text(case["format"], case["content"], _words(case["thought_words"]),
                         _words(case["tool_call_words"]))


@pytest.mark.parametrize("case", CASES, ids=[f"{c['kind']}-{c['format']}-{c['name']}" for c in CASES])
def test_matches_llamafactory(case: dict) -> None:
    if "error" in case:
        with pytest.raises(ValueError):
            _ours(case)
    else:
        assert _ours(case) == case["text"]


def test_golden_covers_every_format() -> None:
    assert {c["format"] for c in CASES} == set(TOOL_FORMATS)
    assert len(CASES) >= 200


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown tool format 'hermes'; known: default, glm4, llama3, mistral, qwen"):
        tools_text("hermes", "[]")
    with pytest.raises(ValueError, match="known: default"):
        function_text("hermes", "{}", None, None)


def test_invalid_json_names_the_problem() -> None:
    with pytest.raises(ValueError, match=r"tools is not valid JSON \(Expecting property name"):
        tools_text("qwen", "[{'name': 'x'}]")
    with pytest.raises(ValueError, match=r"function call is not valid JSON .*'I cannot call a tool\.'"):
        function_text("qwen", "I cannot call a tool.", None, None)
    with pytest.raises(ValueError, match="each function call needs 'name' and 'arguments'"):
        function_text("qwen", '{"name": "x"}', None, None)


def test_llama3_date_defaults_to_today() -> None:
    text = tools_text("llama3", '[{"name": "ping"}]')
    assert f"Today Date: {date.today().strftime('%d %b %Y')}\n" in text


def test_glm4_rejects_parallel_calls() -> None:
    calls = json.dumps([{"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}])
    with pytest.raises(ValueError, match="exactly one function call per turn, got 2"):
        function_text("glm4", calls, None, None)


def test_default_format_needs_string_enums() -> None:
    tools = '[{"name": "pick", "parameters": {"properties": {"n": {"enum": [1, 2]}}}}]'
    with pytest.raises(ValueError, match=r"tools\[0\]\.parameters\.properties\.n\.enum: .* list of strings"):
        tools_text("default", tools)


def test_config_knows_every_tool_format() -> None:
    """config checks tool_format against its own list (config is below text): it must name exactly these formats."""
    from tunelab.config.schema import TOOL_FORMAT_NAMES

    assert tuple(TOOL_FORMAT_NAMES) == tuple(TOOL_FORMATS)
