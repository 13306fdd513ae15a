"""Tool-call formats: detection from the template text, parsing answers, splitting streamed text."""

from __future__ import annotations

import json

import pytest

from tunelab.text.tool_text import function_text
from tunelab.text.tool_calls import HermesFormat, Llama3JsonFormat, StreamSplitter, detect

from .conftest import HERMES_TEMPLATE

LLAMA3_TEMPLATE = ("{%- if tools %}<|start_header_id|>user<|end_header_id|>Respond in the format "
                   '{"name": function name, "parameters": dictionary of argument name and its value}.'
                   "{%- endif %}")


def test_detect_reads_the_template_text():
    assert isinstance(detect(HERMES_TEMPLATE), HermesFormat)
    assert isinstance(detect(LLAMA3_TEMPLATE), Llama3JsonFormat)
    assert detect("{% for m in messages %}{{ m.content }}{% endfor %}") is None
    assert detect(None) is None


def test_hermes_parses_calls_and_keeps_the_text_around_them():
    text = ('Let me look.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
            '<tool_call>{"name": "time", "arguments": {}}</tool_call>')
    parsed = HermesFormat().parse(text)
    assert parsed.content == "Let me look."
    assert [c.name for c in parsed.calls] == ["weather", "time"]
    assert json.loads(parsed.calls[0].arguments) == {"city": "Paris"}
    assert parsed.calls[0].id.startswith("call_") and parsed.calls[0].id != parsed.calls[1].id
    assert parsed.calls[0].to_openai()["type"] == "function"


def test_hermes_without_calls_or_with_broken_json_is_content():
    assert HermesFormat().parse("Just text.").calls == []
    broken = HermesFormat().parse('<tool_call>{"name": "x", "arguments": {</tool_call>')
    assert broken.calls == [] and broken.content.startswith("<tool_call>")


def test_hermes_accepts_an_unclosed_last_block_and_string_arguments():
    parsed = HermesFormat().parse('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}')
    assert parsed.content is None and parsed.calls[0].arguments == '{"a": 1}'


def test_llama3_json_calls():
    fmt = Llama3JsonFormat()
    one = fmt.parse('{"name": "weather", "parameters": {"city": "Paris"}}')
    assert one.content is None and one.calls[0].name == "weather"
    assert json.loads(one.calls[0].arguments) == {"city": "Paris"}
    two = fmt.parse('<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": 1}}')
    assert [c.name for c in two.calls] == ["a", "b"]
    assert fmt.parse("The weather is fine.").calls == []
    assert fmt.parse('{"not": "a call"}').content == '{"not": "a call"}'


def test_splitter_shows_content_and_buffers_from_the_opening():
    splitter = StreamSplitter(HermesFormat())
    shown = "".join(splitter.feed(piece) for piece in ["Sure", ". <tool", "_ca", 'll>{"name": "f", ',
                                                         '"arguments": {}}</tool_call>'])
    assert shown == "Sure. "
    parsed = splitter.finish()
    assert parsed.calls[0].name == "f"


def test_splitter_releases_a_false_opening():
    splitter = StreamSplitter(HermesFormat())
    assert splitter.feed("a <tool") == "a "
    assert splitter.feed("box>") == "<toolbox>"
    assert splitter.finish().content is None


def test_splitter_llama3_holds_blank_start_then_decides():
    splitter = StreamSplitter(Llama3JsonFormat())
    assert splitter.feed(" ") == ""
    assert splitter.feed("Hi") == " Hi"
    json_splitter = StreamSplitter(Llama3JsonFormat())
    assert json_splitter.feed('{"name": "f", "parameters": {}}') == ""
    assert json_splitter.finish().calls[0].name == "f"


WEATHER = {"name": "weather", "arguments": {"city": "巴黎"}}


# LLaMA-Factory's llama3 format writes one call per answer (the first); qwen writes each in its own block
@pytest.mark.parametrize(("tool_format", "parser", "calls"), [
    ("qwen", HermesFormat, [WEATHER, {"name": "time", "arguments": {}}]),
    ("llama3", Llama3JsonFormat, [WEATHER]),
])
def test_calls_written_for_training_parse_back(tool_format: str, parser: type, calls: list[dict]) -> None:
    """One format, two directions: what text/tool_text writes into a training answer, text/tool_calls reads back."""
    written = function_text(tool_format, json.dumps(calls, ensure_ascii=False), None, None)
    parsed = parser().parse(written)
    assert [(c.name, json.loads(c.arguments)) for c in parsed.calls] == [(c["name"], c["arguments"]) for c in calls]
