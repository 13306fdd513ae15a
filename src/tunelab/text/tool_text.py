"""The tool-call text format, written into training prompts (data); text/tool_calls.py parses it back out of answers.

`tools_text` is the text a template appends to the system prompt for a row's `tools` column; `function_text` is
what goes into the assistant slot for a `function_call` turn. Both give the same characters as LLaMA-Factory
0.9.5's `ToolFormatter` / `FunctionFormatter` for the formats its templates default, chatml, qwen, qwen3,
qwen3_nothink, llama3, mistral, glm4 and chatglm3 use (tests/fixtures/tool_text_golden.json, recorded by
tools/lf_tool_text_golden.py, holds the proof). Inputs LLaMA-Factory crashes on raise ValueError here, with the
reason. `qwen` writes what text/tool_calls.HermesFormat parses, `llama3` what Llama3JsonFormat parses (a test
writes calls and parses them back).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
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
