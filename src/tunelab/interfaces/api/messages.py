"""OpenAI chat messages to the model's prompt: role-order checks, then the model's own chat template."""

from __future__ import annotations

import json

from pydantic import JsonValue

from tunelab.data.render import generation_prompt
from tunelab.infer.protocols import Tokenizer
from tunelab.text.tool_calls import ToolFormat, detect, format_names
from tunelab.interfaces.api.errors import APIError
from tunelab.interfaces.api.protocol import ChatRequest, Message, TextPart


def text_of(content: str | list[TextPart] | None) -> str:
    """Message content as one string: text parts joined by newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content)


def bad_order(index: int, message: str) -> APIError:
    """A 400 naming the message that breaks the conversation's order."""
    return APIError(400, f"messages[{index}]: {message}", param=f"messages[{index}]", code="invalid_message_order")


def check_order(messages: list[Message]) -> None:
    """System first, assistants with content or calls, tool results after a call, and a user or tool turn last."""
    calls_open = False
    for i, message in enumerate(messages):
        if message.role in ("system", "developer") and i > 0:
            raise bad_order(i, f"a {message.role} message must come first; merge it into messages[0]")
        if message.role == "tool" and not calls_open:
            raise bad_order(i, "a tool message must follow an assistant message with tool_calls "
                               "(the call it answers)")
        if message.role == "assistant" and message.content is None and not message.tool_calls:
            raise bad_order(i, "an assistant message needs content or tool_calls")
        if message.role == "user" and message.content is None:
            raise bad_order(i, "a user message needs content")
        if message.role == "assistant":
            calls_open = bool(message.tool_calls)
        elif message.role != "tool":
            calls_open = False
    if messages[-1].role not in ("user", "tool"):
        raise bad_order(len(messages) - 1, f"the conversation must end with a user or tool message, not "
                                           f"{messages[-1].role}; the model answers the last user/tool turn")
    if len(messages) == 1 and messages[0].role in ("system", "developer"):
        raise bad_order(0, "a system message alone is no conversation; add a user message")


def arguments_of(arguments: str | dict[str, JsonValue]) -> JsonValue:
    """Call arguments as the templates expect them (a mapping); a string that is not JSON stays a string."""
    if isinstance(arguments, dict):
        return arguments
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments


def template_messages(messages: list[Message]) -> list[dict[str, JsonValue]]:
    """Messages in the shape Hugging Face chat templates read (tool calls with mapping arguments)."""
    names: dict[str, str] = {}
    out: list[dict[str, JsonValue]] = []
    for message in messages:
        role = "system" if message.role == "developer" else message.role
        item: dict[str, JsonValue] = {"role": role, "content": text_of(message.content)}
        if message.tool_calls:
            item["tool_calls"] = [{"id": call.id, "type": "function",
                                   "function": {"name": call.function.name,
                                                "arguments": arguments_of(call.function.arguments)}}
                                  for call in message.tool_calls]
            names.update({call.id: call.function.name for call in message.tool_calls if call.id})
        if role == "tool":
            item["tool_call_id"] = message.tool_call_id
            if message.tool_call_id in names:
                item["name"] = names[message.tool_call_id]
        if message.name and role != "tool":
            item["name"] = message.name
        out.append(item)
    return out


def tool_format(tokenizer: Tokenizer, body: ChatRequest) -> ToolFormat | None:
    """The template's tool-call format when the request uses tools; 400 when the template has none."""
    if not body.use_tools():
        return None
    found = detect(getattr(tokenizer, "chat_template", None))
    if found is None:
        raise APIError(400, f"the served model's chat template defines no tool-call format (tunelab parses "
                            f"{', '.join(format_names())}); leave out 'tools', set tool_choice 'none', or serve a "
                            f"model whose chat template supports tools", param="tools", code="tools_unsupported")
    return found


def render(tokenizer: Tokenizer, body: ChatRequest) -> list[int]:
    """The prompt's token ids: the messages (and tools) through the model's chat template."""
    check_order(body.messages)
    tools = [tool.model_dump(exclude_none=True) for tool in body.tools] if body.use_tools() else None
    try:
        return generation_prompt(tokenizer, template_messages(body.messages), tools)[1]
    except Exception as exc:  # noqa: BLE001 - jinja's TemplateError and raise_exception() in templates
        raise APIError(400, f"the model's chat template refused the messages: {exc}", param="messages",
                       code="invalid_messages") from exc
