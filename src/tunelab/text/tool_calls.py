"""The tool-call text format, both directions: written into training prompts, parsed back out of answers.

Writing (data): `tools_text` is the text a template appends to the system prompt for a row's `tools` column;
`function_text` is what goes into the assistant slot for a `function_call` turn. Both give the same characters
as LLaMA-Factory 0.9.5's `ToolFormatter` / `FunctionFormatter` for the formats its templates default, chatml,
qwen, qwen3, qwen3_nothink, llama3, mistral, glm4 and chatglm3 use (tests/fixtures/tool_text_golden.json,
recorded by tools/lf_tool_text_golden.py, holds the proof). Inputs LLaMA-Factory crashes on raise ValueError
here, with the reason.

Parsing (infer, the API): the served chat template is the source of truth: the format is detected from the
template's text (the markers it renders for past tool calls), never configured separately, so a model is parsed
the way it was trained. `qwen` writes what `HermesFormat` parses, `llama3` what `Llama3JsonFormat` parses.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

# A decoded JSON value (tool schemas, call arguments).
JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]


# Writing: tool descriptions and function calls in training prompts, per LLaMA-Factory tool format.

_DEFAULT_PROMPT = (
    "You have access to the following tools:\n{tools}"
    "Use the following format if using a tool:\n```\n"
    "Action: tool name (one of [{names}])\n"
    "Action Input: the input to the tool, in a JSON format representing the kwargs "
    '(e.g. ```{{"input": "hello world", "num_beams": 5}}```)\n```\n'
)
_GLM4_PROMPT = (
    "你是一个名为 ChatGLM 的人工智能助手。你是基于智谱 AI 公司训练的语言模型 GLM-4 模型开发的，"
    "你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具{tools}"
)
_GLM4_TOOL_SUFFIX = "\n在调用上述函数时，请使用 Json 格式表示调用的参数。"
_LLAMA3_PROMPT = (
    "Cutting Knowledge Date: December 2023\nToday Date: {today}\n\n"
    "You have access to the following functions. To call a function, please respond with JSON for a "
    'function call. Respond in the format {{"name": function name, "parameters": dictionary of argument '
    'name and its value}}. Do not use variables.\n\n{tools}'
)
_QWEN_PROMPT = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, '
    '"arguments": <args-json-object>}}\n</tool_call>'
)

Call = tuple[JSON, JSON]  # (name, arguments) as parsed from the function_call JSON


def _dumps(value: JSON, indent: int | None = None) -> str:
    """JSON text with non-ASCII characters kept, as every tool format writes it."""
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _unwrapped(tool: dict[str, JSON], index: int) -> dict[str, JSON]:
    """The function object of a tool, whether given bare or as {"type": "function", "function": {...}}."""
    inner = tool.get("function") if tool.get("type") == "function" else tool
    if not isinstance(inner, dict):
        raise ValueError(f"tools[{index}]: a tool of type 'function' needs a 'function' object")
    return inner


def _wrapped(tool: dict[str, JSON]) -> dict[str, JSON]:
    """The tool in the OpenAI shape {"type": "function", "function": {...}}."""
    return tool if tool.get("type") == "function" else {"type": "function", "function": tool}


def _default_param_line(name: str, param: JSON, required: JSON, where: str) -> str:
    """One '  - name (type, required): description, ...' line of the default format."""
    if not isinstance(param, dict):
        raise ValueError(f"{where}: a parameter must be a JSON object, got {_dumps(param)}")
    line = f"  - {name} ({param.get('type', '')}{', required' if name in required else ''}): "
    line += f"{param.get('description', '')}"
    if param.get("enum"):
        if not isinstance(param["enum"], list) or not all(isinstance(v, str) for v in param["enum"]):
            raise ValueError(f"{where}.enum: the default tool format needs a list of strings, "
                             f"got {_dumps(param['enum'])}")
        line += f", should be one of [{', '.join(param['enum'])}]"
    if param.get("items"):
        if not isinstance(param["items"], dict):
            raise ValueError(f"{where}.items: must be a JSON object, got {_dumps(param['items'])}")
        line += f", where each item should be {param['items'].get('type', '')}"
    return line + "\n"


def _default_tools(tools: list[dict[str, JSON]]) -> str:
    """Tool descriptions of the 'default' format: a bulleted list per tool and the Action/Action Input rule."""
    blocks, names = [], []
    for index, tool in enumerate(tools):
        tool = _unwrapped(tool, index)
        parameters = tool.get("parameters")
        if "name" not in tool or not isinstance(parameters, dict) or not isinstance(
                parameters.get("properties"), dict):
            raise ValueError(f"tools[{index}]: the default tool format needs 'name' and "
                             "'parameters.properties' (an object; use {} for a tool without arguments)")
        required = parameters.get("required", [])
        if not isinstance(required, list):
            raise ValueError(f"tools[{index}].parameters.required must be a list of names, got {_dumps(required)}")
        args = "".join(_default_param_line(name, param, required, f"tools[{index}].parameters.properties.{name}")
                       for name, param in parameters["properties"].items())
        blocks.append(f"> Tool Name: {tool['name']}\nTool Description: {tool.get('description', '')}\n"
                      f"Tool Args:\n{args}\n")
        names.append(f"{tool['name']}")
    return _DEFAULT_PROMPT.format(tools="".join(blocks), names=", ".join(names))


def _glm4_tools(tools: list[dict[str, JSON]]) -> str:
    """Tool descriptions of the 'glm4' format: a '## name' heading and the indented JSON per tool."""
    parts = []
    for index, tool in enumerate(tools):
        tool = _unwrapped(tool, index)
        if "name" not in tool:
            raise ValueError(f"tools[{index}]: the glm4 tool format needs a 'name'")
        parts.append(f"\n\n## {tool['name']}\n\n{_dumps(tool, indent=4)}{_GLM4_TOOL_SUFFIX}")
    return _GLM4_PROMPT.format(tools="".join(parts))


def _llama3_tools(tools: list[dict[str, JSON]], today: date | None = None) -> str:
    """Tool descriptions of the 'llama3' format: each wrapped tool as indented JSON, after the date header."""
    today = today or date.today()
    text = "".join(_dumps(_wrapped(tool), indent=4) + "\n\n" for tool in tools)
    return _LLAMA3_PROMPT.format(today=today.strftime("%d %b %Y"), tools=text)


def _mistral_tools(tools: list[dict[str, JSON]]) -> str:
    """Tool descriptions of the 'mistral' format: one JSON list inside [AVAILABLE_TOOLS]."""
    return "[AVAILABLE_TOOLS] " + _dumps([_wrapped(tool) for tool in tools]) + "[/AVAILABLE_TOOLS]"


def _qwen_tools(tools: list[dict[str, JSON]]) -> str:
    """Tool descriptions of the 'qwen' format: one JSON line per wrapped tool inside <tools>."""
    return _QWEN_PROMPT.format(tools="".join("\n" + _dumps(_wrapped(tool)) for tool in tools))


def _default_calls(calls: list[Call]) -> str:
    """Action / Action Input pairs, one per call."""
    return "\n".join(f"Action: {name}\nAction Input: {_dumps(arguments)}" for name, arguments in calls)


def _glm4_calls(calls: list[Call]) -> str:
    """The name, a newline and the arguments JSON; GLM-4 has no parallel calls."""
    if len(calls) != 1:
        raise ValueError(f"the glm4 tool format takes exactly one function call per turn, got {len(calls)}")
    name, arguments = calls[0]
    return f"{name}\n{_dumps(arguments)}"


def _llama3_calls(calls: list[Call]) -> str:
    """{"name", "parameters"} JSON, a list only for parallel calls."""
    objects = [{"name": name, "parameters": arguments} for name, arguments in calls]
    return _dumps(objects[0] if len(objects) == 1 else objects)


def _mistral_calls(calls: list[Call]) -> str:
    """A JSON list of {"name", "arguments"}."""
    return _dumps([{"name": name, "arguments": arguments} for name, arguments in calls])


def _qwen_calls(calls: list[Call]) -> str:
    """One <tool_call> block of {"name", "arguments"} JSON per call."""
    return "\n".join(f"<tool_call>\n{_dumps({'name': name, 'arguments': arguments})}\n</tool_call>"
                     for name, arguments in calls)


_TOOL_WRITERS: dict[str, Callable[[list[dict[str, JSON]]], str]] = {
    "default": _default_tools, "glm4": _glm4_tools, "llama3": _llama3_tools,
    "mistral": _mistral_tools, "qwen": _qwen_tools,
}
_CALL_WRITERS: dict[str, Callable[[list[Call]], str]] = {
    "default": _default_calls, "glm4": _glm4_calls, "llama3": _llama3_calls,
    "mistral": _mistral_calls, "qwen": _qwen_calls,
}
TOOL_FORMATS: tuple[str, ...] = tuple(_TOOL_WRITERS)


def _check_format(tool_format: str) -> None:
    """Reject a tool format we do not write, naming the ones we do."""
    if tool_format not in _TOOL_WRITERS:
        raise ValueError(f"unknown tool format {tool_format!r}; known: {', '.join(TOOL_FORMATS)}")


def _short(text: str, limit: int = 120) -> str:
    """The text as a Python literal, cut to `limit` characters for an error message."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def tools_text(tool_format: str, tools_json: str, *, today: date | None = None) -> str:
    """The tool descriptions appended to the system prompt for `tools_json` ('' when it lists no tools)."""
    _check_format(tool_format)
    try:
        tools = json.loads(tools_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"tools is not valid JSON ({exc}): {_short(tools_json)}") from None
    if tools in ([], {}):
        return ""
    if not isinstance(tools, list):
        raise ValueError(f"tools must be a JSON list of tool objects, got {_short(tools_json)}")
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise ValueError(f"tools[{index}] must be a JSON object, got {_dumps(tool)}")
    if tool_format == "llama3":
        return _llama3_tools(tools, today)
    return _TOOL_WRITERS[tool_format](tools)


def _parse_calls(json_text: str, content: str) -> list[Call]:
    """(name, arguments) of each call in a function_call JSON object or list."""
    try:
        parsed = json.loads(json_text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"function call is not valid JSON ({exc}): {_short(content)}; write "
                         '{"name": ..., "arguments": {...}} or a list of them') from None
    calls = []
    for item in parsed if isinstance(parsed, list) else [parsed]:
        if not isinstance(item, dict) or "name" not in item or "arguments" not in item:
            raise ValueError(f"each function call needs 'name' and 'arguments', got {_dumps(item)}")
        calls.append((item["name"], item["arguments"]))
    return calls


def _first_span(text: str, words: tuple[str, str] | None) -> re.Match[str] | None:
    """The first `words[0] ... words[1]` span of text (shortest), if words are given."""
    if not words or len(words) != 2:
        return None
    return re.search(f"{re.escape(words[0])}(.*?){re.escape(words[1])}", text, re.DOTALL)


def function_text(tool_format: str, content: str, thought_words: tuple[str, str] | None,
                  tool_call_words: tuple[str, str] | None) -> str:
    """The formatted function-call text for an assistant function_call turn, any thought kept in front."""
    _check_format(tool_format)
    write = _CALL_WRITERS[tool_format]
    wrapped = _first_span(content, tool_call_words)
    if wrapped is not None:
        # only the first wrapped block is parsed; everything else (thought included) is kept verbatim in front
        before = content.replace(wrapped.group(0), "")
        return before + write(_parse_calls(wrapped.group(1), content))
    thought = _first_span(content, thought_words)
    if thought is None:
        return write(_parse_calls(content, content))
    return thought.group(0) + write(_parse_calls(content.replace(thought.group(0), ""), content))


# Parsing: tool calls out of a model's answer, in the format its chat template renders.


@dataclass(frozen=True)
class ToolCall:
    """One parsed call: the function name and its arguments as a JSON string (OpenAI's shape)."""

    name: str
    arguments: str
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")

    def to_openai(self) -> dict[str, str | dict[str, str]]:
        """The call as an OpenAI `tool_calls` entry."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class Parsed:
    """A model answer split into the text outside the calls (None when there is none) and the calls."""

    content: str | None
    calls: list[ToolCall]


def call_from_json(obj: JSON, arguments_key: str) -> ToolCall | None:
    """A ToolCall from a decoded {"name": ..., <arguments_key>: {...}} object, or None if it is not one."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get(arguments_key, obj.get("arguments", {}))
    # some models emit the arguments already encoded as a JSON string; OpenAI wants a string either way
    arguments = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    return ToolCall(name=obj["name"], arguments=arguments)


def content_or_none(text: str) -> str | None:
    """Stripped text, or None when nothing but whitespace is left."""
    text = text.strip()
    return text or None


class HermesFormat:
    """Hermes / Qwen2.5 / Qwen3 style: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks."""

    name = "hermes"
    opening = "<tool_call>"
    pattern = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)

    def start(self, text: str) -> int:
        """Index where the first tool call begins in text, or -1."""
        return text.find(self.opening)

    def holdback(self, text: str) -> int:
        """How many trailing characters of text might be the beginning of a tool call (held back when streaming)."""
        for size in range(min(len(self.opening) - 1, len(text)), 0, -1):
            if self.opening.startswith(text[-size:]):
                return size
        return 0

    def parse(self, text: str) -> Parsed:
        """Split text into content and calls; a block that is not valid JSON stays in the content."""
        calls: list[ToolCall] = []
        kept: list[str] = []
        last = 0
        for match in self.pattern.finditer(text):
            try:
                call = call_from_json(json.loads(match.group(1)), "arguments")
            except json.JSONDecodeError:
                call = None
            if call is None:
                continue
            kept.append(text[last:match.start()])
            last = match.end()
            calls.append(call)
        kept.append(text[last:])
        return Parsed(content=content_or_none("".join(kept)) if calls else content_or_none(text), calls=calls)


class Llama3JsonFormat:
    """Llama 3.1 / 3.2 / 3.3 JSON tool calling: the whole answer is `{"name": ..., "parameters": {...}}`
    (optionally after `<|python_tag|>`, several calls separated by `;`)."""

    name = "llama3_json"
    python_tag = "<|python_tag|>"

    def start(self, text: str) -> int:
        """0 when the answer (so far) begins like a JSON call, else -1: Llama answers a call with JSON only."""
        stripped = text.lstrip()
        if stripped.startswith(self.python_tag) or stripped.startswith("{"):
            return 0
        return -1

    def holdback(self, text: str) -> int:
        """Everything while the answer is blank or a prefix of the python tag: it may still become a call."""
        stripped = text.lstrip()
        return len(text) if not stripped or self.python_tag.startswith(stripped) else 0

    def parse(self, text: str) -> Parsed:
        """The calls when the whole answer is JSON calls; otherwise the text as content."""
        body = text.strip()
        if body.startswith(self.python_tag):
            body = body[len(self.python_tag):].strip()
        if not body.startswith("{"):
            return Parsed(content=content_or_none(text), calls=[])
        decoder = json.JSONDecoder()
        calls: list[ToolCall] = []
        position = 0
        while position < len(body):
            try:
                obj, end = decoder.raw_decode(body, position)
            except json.JSONDecodeError:
                return Parsed(content=content_or_none(text), calls=[])
            call = call_from_json(obj, "parameters")
            if call is None:
                return Parsed(content=content_or_none(text), calls=[])
            calls.append(call)
            position = end
            while position < len(body) and body[position] in " \t\r\n;":
                position += 1
        return Parsed(content=None, calls=calls)


ToolFormat = HermesFormat | Llama3JsonFormat

# Markers each format's templates render; checked in order (the first match wins).
DETECTORS: list[tuple[str, tuple[str, ...], type[HermesFormat] | type[Llama3JsonFormat]]] = [
    ("hermes", ("<tool_call>",), HermesFormat),
    ("llama3_json", ("<|start_header_id|>", '"parameters"'), Llama3JsonFormat),
]


def detect(chat_template: str | None) -> ToolFormat | None:
    """The tool-call format a chat template uses, or None when it defines none."""
    if not chat_template or "tools" not in chat_template:
        return None
    for _, markers, kind in DETECTORS:
        if all(marker in chat_template for marker in markers):
            return kind()
    return None


def format_names() -> list[str]:
    """Names of the known formats, for error messages and docs."""
    return [name for name, _, _ in DETECTORS]


class StreamSplitter:
    """Splits streamed answer text into content to show now and tool-call text buffered until the end."""

    def __init__(self, tool_format: ToolFormat) -> None:
        self.format = tool_format
        self.pending = ""
        self.buffer: str | None = None

    def feed(self, text: str) -> str:
        """Add streamed text; the content that is safe to show (never the start of a tool call)."""
        if self.buffer is not None:
            self.buffer += text
            return ""
        self.pending += text
        start = self.format.start(self.pending)
        if start >= 0:
            content, self.buffer, self.pending = self.pending[:start], self.pending[start:], ""
            return content
        keep = self.format.holdback(self.pending)
        cut = len(self.pending) - keep
        content, self.pending = self.pending[:cut], self.pending[cut:]
        return content

    def finish(self) -> Parsed:
        """At the end: the calls parsed from the buffered text, and the content not yet shown."""
        if self.buffer is None:
            return Parsed(content=self.pending or None, calls=[])
        return self.format.parse(self.buffer)
