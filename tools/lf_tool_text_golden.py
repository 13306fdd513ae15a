"""Record LLaMA-Factory's tool-description and function-call prompt text: tests/fixtures/tool_text_golden.json.

Run with the Python of a venv where LLaMA-Factory 0.9.5 is installed:

    /path/to/lf-venv/bin/python tools/lf_tool_text_golden.py

For every tool format used by the templates default, chatml, qwen, qwen3, qwen3_nothink, llama3, mistral,
glm4 and chatglm3, it feeds fixed tool lists through LLaMA-Factory's `ToolFormatter` and fixed assistant
function-call contents through `FunctionFormatter` (slot "{{content}}", so the slot adds nothing), and
records the text, or that LLaMA-Factory raised. The llama3 prompt's "Today Date" is pinned to FIXED_DATE.
tests/unit/data/test_tool_text.py checks tunelab.text.tool_text against every case.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import llamafactory.data.tool_utils as lf_tool_utils
from llamafactory.data.formatter import FunctionFormatter, ToolFormatter

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tool_text_golden.json"
FORMATS = ("default", "glm4", "llama3", "mistral", "qwen")
FIXED_DATE = "2024-07-23"

WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city name."},
            "unit": {"type": "string", "description": "Temperature unit.", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}
SEARCH_WRAPPED = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for."},
                "top_k": {"type": "integer", "description": "How many results."},
                "sites": {"type": "array", "items": {"type": "string"}, "description": "Sites to search."},
            },
            "required": ["query", "top_k"],
        },
    },
}
NESTED = {
    "name": "book_flight",
    "description": "Book a flight.",
    "parameters": {
        "type": "object",
        "properties": {
            "route": {
                "type": "object",
                "description": "Where from and to.",
                "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
                "required": ["from", "to"],
            },
            "passengers": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "class": {"type": ["string", "null"], "enum": ["economy", "business"]},
            "flexible": {"type": "boolean"},
            "notes": {},
        },
        "required": ["route"],
    },
}
CHINESE = {
    "name": "查询天气",
    "description": "查询某个城市的天气情况。",
    "parameters": {
        "type": "object",
        "properties": {
            "城市": {"type": "string", "description": "城市名称，例如“北京”。"},
            "日期": {"type": "string", "description": "日期", "enum": ["今天", "明天"]},
        },
        "required": ["城市"],
    },
}
NO_PROPERTIES = {"name": "get_time", "description": "Current time.", "parameters": {"type": "object", "properties": {}}}
NO_PARAMETERS = {"name": "ping", "description": "Check the service."}
NO_DESCRIPTION = {"name": "noop", "parameters": {"type": "object", "properties": {"x": {"type": "number"}}}}
INT_ENUM = {"name": "pick", "parameters": {"type": "object", "properties": {"n": {"type": "integer", "enum": [1, 2]}}}}

TOOL_CASES: dict[str, str] = {
    "one_tool": json.dumps([WEATHER]),
    "wrapped_tool": json.dumps([SEARCH_WRAPPED]),
    "two_tools_mixed": json.dumps([WEATHER, SEARCH_WRAPPED]),
    "nested_objects": json.dumps([NESTED]),
    "chinese": json.dumps([CHINESE], ensure_ascii=False),
    "chinese_escaped": json.dumps([CHINESE]),
    "no_properties": json.dumps([NO_PROPERTIES]),
    "no_parameters": json.dumps([NO_PARAMETERS]),
    "no_description": json.dumps([NO_DESCRIPTION]),
    "int_enum": json.dumps([INT_ENUM]),
    "three_tools": json.dumps([NO_PROPERTIES, CHINESE, NESTED], indent=2),
    "empty_list": "[]",
    "empty_object": "{}",
    "whitespace_empty_list": "  [ ]\n",
    "invalid_json": "[{'name': 'x'}]",
    "truncated_json": '[{"name": "x"',
    "not_a_list": json.dumps(WEATHER),
    "list_of_strings": '["get_weather"]',
}

THINK = ("<think>\n", "\n</think>\n\n")
THINK_BARE = ("<think>", "</think>")
TOOL_CALL = ("<tool_call>", "</tool_call>")

CALL = {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}
CALL_2 = {"name": "search", "arguments": {"query": "weather in Paris", "top_k": 3}}
CALL_ZH = {"name": "查询天气", "arguments": {"城市": "北京", "日期": "明天"}}
CALL_RICH = {"name": "book_flight", "arguments": {
    "route": {"from": "SFO", "to": "東京"}, "passengers": [{"name": "Ann"}, {"name": "Bo"}],
    "flexible": True, "class": None, "price": 1.0, "big": 1e20, "count": 0, "quote": 'say "hi"\n'}}

FUNCTION_CASES: dict[str, tuple[str, tuple[str, str] | None, tuple[str, str] | None]] = {
    "single": (json.dumps(CALL), THINK, TOOL_CALL),
    "single_no_words": (json.dumps(CALL), None, None),
    "single_compact": (json.dumps(CALL, separators=(",", ":")), THINK, TOOL_CALL),
    "single_in_list": (json.dumps([CALL]), THINK, TOOL_CALL),
    "parallel": (json.dumps([CALL, CALL_2]), THINK, TOOL_CALL),
    "empty_list": ("[]", THINK, TOOL_CALL),
    "chinese": (json.dumps(CALL_ZH, ensure_ascii=False), THINK, TOOL_CALL),
    "chinese_escaped": (json.dumps(CALL_ZH), THINK, TOOL_CALL),
    "rich_arguments": (json.dumps(CALL_RICH), THINK, TOOL_CALL),
    "empty_arguments": ('{"name": "get_time", "arguments": {}}', THINK, TOOL_CALL),
    "string_arguments": ('{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}', THINK, TOOL_CALL),
    "surrounding_whitespace": ("\n  " + json.dumps(CALL) + "  \n", THINK, TOOL_CALL),
    "thought": ("<think>\nThe user wants the weather.\n</think>\n\n" + json.dumps(CALL), THINK, TOOL_CALL),
    "thought_parallel": ("<think>\nTwo calls.\n</think>\n\n" + json.dumps([CALL, CALL_2]), THINK, TOOL_CALL),
    "thought_bare_words": ("<think>plan</think>" + json.dumps(CALL), THINK_BARE, TOOL_CALL),
    "thought_without_words": ("<think>\nplan\n</think>\n\n" + json.dumps(CALL), None, None),
    "thought_chinese": ("<think>\n用户想知道天气。\n</think>\n\n" + json.dumps(CALL_ZH, ensure_ascii=False),
                        THINK, TOOL_CALL),
    "wrapped": ("<tool_call>\n" + json.dumps(CALL) + "\n</tool_call>", THINK, TOOL_CALL),
    "wrapped_no_thought_words": ("<tool_call>" + json.dumps(CALL) + "</tool_call>", None, TOOL_CALL),
    "wrapped_with_thought": ("<think>\nplan\n</think>\n\n<tool_call>\n" + json.dumps(CALL) + "\n</tool_call>",
                             THINK, TOOL_CALL),
    "wrapped_with_text_before": ("I will check.\n<tool_call>" + json.dumps(CALL) + "</tool_call>", THINK, TOOL_CALL),
    "wrapped_list": ("<tool_call>" + json.dumps([CALL, CALL_2]) + "</tool_call>", THINK, TOOL_CALL),
    "wrapped_twice": ("<tool_call>" + json.dumps(CALL) + "</tool_call>\n<tool_call>" + json.dumps(CALL_2)
                      + "</tool_call>", THINK, TOOL_CALL),
    "wrapped_same_twice": ("<tool_call>" + json.dumps(CALL) + "</tool_call><tool_call>" + json.dumps(CALL)
                           + "</tool_call>", THINK, TOOL_CALL),
    "wrapped_chinese": ("<tool_call>\n" + json.dumps(CALL_ZH, ensure_ascii=False) + "\n</tool_call>",
                        THINK, TOOL_CALL),
    "wrapped_but_no_tool_call_words": ("<tool_call>" + json.dumps(CALL) + "</tool_call>", THINK, None),
    "invalid_json": ("{'name': 'get_weather', 'arguments': {}}", THINK, TOOL_CALL),
    "plain_text": ("I cannot call a tool.", THINK, TOOL_CALL),
    "wrapped_invalid_json": ("<tool_call>{name: x}</tool_call>", THINK, TOOL_CALL),
    "missing_name": ('{"arguments": {"city": "Paris"}}', THINK, TOOL_CALL),
    "missing_arguments": ('{"name": "get_weather"}', THINK, TOOL_CALL),
    "not_an_object": ('["get_weather"]', THINK, TOOL_CALL),
}


class FixedDatetime(datetime):
    """Stands in for datetime in LLaMA-Factory's tool_utils so the llama3 'Today Date' line is fixed."""

    @classmethod
    def now(cls, tz=None):  # noqa: ANN001, ANN206
        return cls.fromisoformat(FIXED_DATE)


def run(call) -> dict:  # noqa: ANN001
    """The text LLaMA-Factory produced, or the exception it raised."""
    try:
        return {"text": call()}
    except Exception as exc:  # noqa: BLE001 - any failure is recorded as 'LF rejects this input'
        return {"error": f"{type(exc).__name__}: {exc}"}


def main() -> None:
    """Write the golden file."""
    lf_tool_utils.datetime = FixedDatetime
    cases = []
    for fmt in FORMATS:
        tool_formatter = ToolFormatter(tool_format=fmt)
        function_formatter = FunctionFormatter(slots=["{{content}}"], tool_format=fmt)
        for name, tools_json in TOOL_CASES.items():
            result = run(lambda: tool_formatter.apply(content=tools_json)[0])
            cases.append({"kind": "tools", "name": name, "format": fmt, "tools": tools_json, **result})
        for name, (content, thought_words, tool_call_words) in FUNCTION_CASES.items():
            result = run(lambda: function_formatter.apply(
                content=content, thought_words=thought_words, tool_call_words=tool_call_words)[0])
            cases.append({"kind": "function", "name": name, "format": fmt, "content": content,
                          "thought_words": thought_words, "tool_call_words": tool_call_words, **result})
    payload = {"llamafactory": "0.9.5", "date": FIXED_DATE, "cases": cases}
    OUT.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
