"""OpenAI-style rows (messages with role/content, tool_calls, tool results) -> examples, as LLaMA-Factory aligns them.

Like LLaMA-Factory's OpenAIDatasetConverter: an assistant message with tool_calls becomes a function turn whose
content is the JSON list of the calls' "function" objects; consecutive tool results merge into one observation
turn; then the sharegpt turn rules apply (see sharegpt.py).
"""

from __future__ import annotations

import json

from tunelab.data.convert.fields import Common, Row, content_text, tools_field
from tunelab.data.convert.sharegpt import Turn, finish, leading_system, mapped_role, message_at, message_list
from tunelab.data.errors import DataError
from tunelab.data.examples import Example
from tunelab.data.registry import DatasetEntry

TOOL_RESPONSE_JOIN = "\n</tool_response>\n<tool_response>\n"  # LLaMA-Factory's join of consecutive tool results
THINKING_OFF = "detailed thinking off"


def tool_calls_json(tool_calls: object, field: str) -> str:
    """The content LLaMA-Factory gives a tool-calling turn: json.dumps of each call's "function" object."""
    fix = 'write them as [{"type": "function", "function": {"name": ..., "arguments": ...}}]'
    if not isinstance(tool_calls, list):
        raise DataError(f"tool_calls must be a list, got {type(tool_calls).__name__}", field=field, fix=fix,
                        kind="tool_calls is not a list")
    functions = []
    for number, call in enumerate(tool_calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not (isinstance(function, dict) and "name" in function and "arguments" in function):
            raise DataError(f"tool call {number} needs a 'function' object with 'name' and 'arguments'",
                            field=f"{field}[{number}]", fix=fix, kind="tool call without function name or arguments")
        functions.append(function)
    return json.dumps(functions, ensure_ascii=False)


def thinking_system(system: str, tools: str) -> str:
    """LLaMA-Factory 0.9.5's openai converter edits the system prompt like this; we keep its tokens identical."""
    if not system:
        return system if tools else THINKING_OFF
    if tools:
        return system + "\n"
    if "detailed thinking on" in system or THINKING_OFF in system:
        return system
    return system + "\n" + THINKING_OFF


def aligned_turns(messages: list[object], start: int, entry: DatasetEntry) -> list[Turn]:
    """The messages as turns: tool calls as function turns, runs of tool results merged into one observation."""
    tags, column = entry.tags, entry.columns.messages
    turns: list[Turn] = []
    results: list[tuple[int, str]] = []
    for index in range(start, len(messages)):
        message, role = message_at(messages, index, entry)
        if role in (tags.assistant_tag, tags.function_tag) and message.get("tool_calls"):
            role, content = tags.function_tag, tool_calls_json(message["tool_calls"], f"{column}[{index}].tool_calls")
        else:
            content = content_text(message.get(tags.content_tag), f"{column}[{index}].{tags.content_tag}")
        if tags.observation_tag is not None and role == tags.observation_tag:
            results.append((index, content))
            continue
        if results:
            turns.append(Turn("observation", TOOL_RESPONSE_JOIN.join(text for _, text in results), results[0][0]))
            results = []
        turns.append(Turn(mapped_role(role, index, entry), content, index))
    if results:  # LLaMA-Factory drops trailing tool results; we keep them so the turn rules can judge the row
        turns.append(Turn("observation", TOOL_RESPONSE_JOIN.join(text for _, text in results), results[0][0]))
    return turns


def convert(row: Row, entry: DatasetEntry, dataset: str, index: int, example: type[Example]) -> Example:
    """One openai-format row -> an example of the given kind (supervised, pair, feedback or prompt-only); no media."""
    messages = message_list(row, entry)
    system, start = leading_system(messages, row, entry)
    turns = aligned_turns(messages, start, entry)
    tools = tools_field(row, entry.columns.tools)
    common: Common = {"dataset": dataset, "row": index, "system": thinking_system(system, tools), "tools": tools}
    return finish(turns, row, entry, example, common)

