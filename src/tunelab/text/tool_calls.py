"""Tool calls parsed out of a model's answer (infer, the API), in the format its chat template renders.

The served chat template is the source of truth: the format is detected from the template's text (the markers it
renders for past tool calls), never configured separately, so a model is parsed the way it was trained.
text/tool_text.py writes the same formats into training prompts: `qwen` writes what `HermesFormat` parses,
`llama3` what `Llama3JsonFormat` parses.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

from tunelab.text.tool_text import JSON


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
