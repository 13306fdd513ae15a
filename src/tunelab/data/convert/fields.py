"""Checked reads of single cells (text, tools JSON, kto tags, function calls) shared by every converter."""

from __future__ import annotations

import json
from typing import TypedDict

from tunelab.data.errors import DataError
from tunelab.runtime.suggest import suggest

Row = dict[str, object]  # one dataset row as read: column -> JSON value


class Common(TypedDict):
    """The context fields every converter fills the same way: where the row came from, its system prompt and tools."""

    dataset: str
    row: int
    system: str
    tools: str


def text_field(row: Row, column: str | None, required: bool = False) -> str:
    """A string cell; None or missing gives '' unless required; other types are errors."""
    if column is None:
        return ""
    value = row.get(column)
    if value is None:
        if required:
            raise missing_column(column, row=row)
        return ""
    if not isinstance(value, str):
        raise DataError(f"expected text, got {type(value).__name__} {value!r:.60}", field=column,
                        fix="make the value a string", kind=f"expected text, got {type(value).__name__}")
    return value


def missing_column(column: str, fix: str | None = None, row: Row | None = None) -> DataError:
    """The error for a mapped column that the row lacks (or holds null in); when the row lacks the field but has one
    of a close name, a did-you-mean and how to map it."""
    hint = suggest(column, row) if row is not None and column not in row else ""
    if hint:
        fix = (f"correct the column name in dataset_info.json's \"columns\" (the row's fields are: "
               f"{', '.join(row or {})})")
    return DataError(f"missing column {column!r}{hint}", field=column,
                     fix=fix or f"add a {column!r} value to the row, or map the right column in dataset_info.json",
                     kind=f"missing column {column!r}{hint}")


def content_text(value: object, field: str) -> str:
    """A message's content, which must be a string."""
    if isinstance(value, str):
        return value
    if value is None:
        raise DataError("the message has no content", field=field, fix="give the message a text content",
                        kind="message without content")
    raise DataError(f"expected text, got {type(value).__name__} {value!r:.60}", field=field,
                    fix="make the content one string (join text parts; put media in the images/videos/audios column)",
                    kind=f"expected text, got {type(value).__name__}")


def tools_field(row: Row, column: str | None) -> str:
    """The tools cell as JSON text: a JSON list of tool objects, or '' when there are none."""
    if column is None:
        return ""
    value = row.get(column)
    if value is None or value == "":
        return ""
    if isinstance(value, list):  # already parsed by the reader; LLaMA-Factory's openai converter dumps it the same way
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, str):
        text = value
    else:
        raise DataError(f"expected a JSON list of tools, got {type(value).__name__} {value!r:.60}", field=column,
                        fix='write it as \'[{"name": ..., "description": ..., "parameters": {...}}]\'',
                        kind="tools is not a JSON list")
    check_tools_json(text, column)
    return text


def check_tools_json(text: str, column: str) -> None:
    """Tools must parse as a list of objects (LLaMA-Factory crashes on anything else when it renders them)."""
    try:
        tools = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"tools is not valid JSON ({exc.msg} at character {exc.pos}): {text!r:.60}", field=column,
                        fix="write the tools as a JSON list of tool objects", kind="tools is not valid JSON") from None
    if not isinstance(tools, list):
        raise DataError(f"tools must be a JSON list of tool objects, got a JSON {type(tools).__name__}",
                        field=column, fix="wrap the tool object in [ ]", kind="tools is not a JSON list")
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise DataError(f"tool {index} is a JSON {type(tool).__name__}, not an object", field=f"{column}[{index}]",
                            fix='write each tool as {"name": ..., "description": ..., "parameters": {...}}',
                            kind="tool is not an object")


def check_function_call(content: str, field: str) -> None:
    """A function_call turn must hold the call(s) as JSON: {"name": ..., "arguments": ...} or a list of them."""
    try:
        calls = json.loads(content)
    except json.JSONDecodeError as exc:
        if "<" in content:  # thought or <tool_call> wrappers: the template's tool format parses those
            return
        raise DataError(f"the function call is not valid JSON ({exc.msg} at character {exc.pos}): {content!r:.60}",
                        field=field, fix='write it as {"name": "tool_name", "arguments": {...}}',
                        kind="function call is not valid JSON") from None
    for call in calls if isinstance(calls, list) else [calls]:
        if not (isinstance(call, dict) and "name" in call and "arguments" in call):
            raise DataError(f"a function call needs 'name' and 'arguments', got {call!r:.60}", field=field,
                            fix='write it as {"name": "tool_name", "arguments": {...}}',
                            kind="function call without name or arguments")


def kto_flag(row: Row, column: str | None) -> bool:
    """The kto_tag cell: true for a desirable answer, false for an undesirable one (JSON booleans only)."""
    if column is None:
        raise DataError("stage kto needs a kto_tag column (true for a desirable answer, false for an undesirable one)",
                        field="columns.kto_tag", fix='add "kto_tag": "label" (your column) to the entry\'s columns',
                        kind="no kto_tag column")
    value = row.get(column)
    if value is None:
        raise missing_column(column, row=row)
    if not isinstance(value, bool):
        raise DataError(f"expected true or false, got {type(value).__name__} {value!r:.60}; {not_a_bool(value)}",
                        field=column, fix=f"write the tag as a JSON boolean: {bool_spelling(value)}",
                        kind="kto_tag is not a boolean")
    return value


def not_a_bool(value: object) -> str:
    """Why a near-boolean kto_tag is refused: LLaMA-Factory reads only JSON booleans and drops other rows silently."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
        return "a string is not a boolean (LLaMA-Factory would silently drop the row)"
    if isinstance(value, (int, float)) and value in (0, 1):
        return "a number is not a boolean (LLaMA-Factory would silently drop the row)"
    return "the tag says whether the answer is desirable (true) or undesirable (false)"


def bool_spelling(value: object) -> str:
    """The JSON boolean a near-boolean value most likely means, as the fix spells it."""
    truthy = isinstance(value, str) and value.strip().lower() in ("true", "yes", "1") or \
        isinstance(value, (int, float)) and value == 1
    falsy = isinstance(value, str) and value.strip().lower() in ("false", "no", "0") or \
        isinstance(value, (int, float)) and value == 0
    if truthy or falsy:
        return f"{'true' if truthy else 'false'} (no quotes) instead of {json.dumps(value)}"
    return "true or false (no quotes)"
