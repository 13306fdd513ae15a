"""Fixtures for the API tests: the tiny Llama behind the app, FastAPI's TestClient, scripted generation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tunelab.config.schema import InferSection
from tunelab.interfaces.api.app import create_app
from tunelab.interfaces.api.state import build_server
from tests.conftest import scripted  # noqa: F401  (the API tests import it from here)

MODEL_ID = "tiny-llama"

# A Hermes / Qwen2.5-style template (shortened): tools in the system turn, calls as <tool_call> JSON blocks.
HERMES_TEMPLATE = """
{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\\n\\n' }}{%- endif %}
{{- '# Tools\\n<tools>' }}
{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}
{{- '\\n</tools>\\nReturn calls as <tool_call>{"name": ..., "arguments": ...}</tool_call><|im_end|>\\n' }}
{%- elif messages[0]['role'] == 'system' %}
{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
{%- if message.role == 'user' or (message.role == 'assistant' and not message.tool_calls) %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- elif message.role == 'assistant' %}
{{- '<|im_start|>assistant\\n' + message.content }}
{%- for tool_call in message.tool_calls %}
{{- '<tool_call>\\n{"name": "' + tool_call.function.name + '", "arguments": ' }}
{{- tool_call.function.arguments | tojson }}{{- '}\\n</tool_call>' }}
{%- endfor %}
{{- '<|im_end|>\\n' }}
{%- elif message.role == 'tool' %}
{{- '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""

GREEDY = InferSection(do_sample=False, max_new_tokens=8)


@pytest.fixture
def make_client(tiny_tokenizer: Any, tiny_llama: Any) -> Iterator[Callable[..., TestClient]]:
    """make_client(api_key=..., settings=..., cutoff_len=..., generate_fn=..., tokenizer=..., max_batch=...,
    max_queue=..., request_timeout=...): a started TestClient."""
    clients: list[TestClient] = []

    def make(api_key: str | None = None, settings: InferSection = GREEDY, cutoff_len: int = 2048,
             generate_fn: Any = None, tokenizer: Any = None, max_batch: int = 8, max_queue: int | None = None,
             request_timeout: float | None = None) -> TestClient:
        server = build_server(tokenizer or tiny_tokenizer, tiny_llama, settings, MODEL_ID, cutoff_len, max_batch,
                              api_key, generate_fn, max_queue=max_queue, request_timeout=request_timeout)
        client = TestClient(create_app(server))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """A client of the tiny Llama, greedy, 8 new tokens by default, no key."""
    return make_client()


def chat_body(content: str = "Hello there", **fields: Any) -> dict[str, Any]:
    """A one-message chat request for the tiny model."""
    return {"model": MODEL_ID, "messages": [{"role": "user", "content": content}], **fields}


def sse_events(response: Any) -> list[Any]:
    """The data payloads of an SSE response (JSON-decoded, '[DONE]' kept as a string)."""
    import json

    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            payload = line[len("data: "):]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events
