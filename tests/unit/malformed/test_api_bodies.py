"""Generated malformed request bodies for /v1/chat/completions and /v1/completions: each field of a valid body
deleted or typed wrong, messages reordered, keys duplicated, the JSON truncated or broken. Each answers 4xx with
OpenAI's error body whose param and message name the request's own field (messages[0].content), never pydantic's
internal names (messages[0].content.str)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

CHAT: dict[str, Any] = {
    "model": "tiny", "temperature": 0.5, "top_p": 0.9, "max_tokens": 4, "stop": ["\n"], "seed": 1, "n": 1,
    "stream": False, "top_k": 5, "repetition_penalty": 1.1,
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                 {"role": "assistant", "content": "Hello", "tool_calls": [
                     {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                 {"role": "tool", "content": "42", "tool_call_id": "c1"}],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {}}}]}
COMPLETION: dict[str, Any] = {"model": "tiny", "prompt": "Once", "max_tokens": 4, "temperature": 0.5, "n": 1}
WRONG = {str: 5, int: "many", float: "hot", bool: "maybe", list: {"a": 1}, dict: "x"}


def paths(value: Any, prefix: str = "") -> Iterator[tuple[str, tuple[str | int, ...], Any]]:
    """Every field of a body: (name as the user writes it, its path, its value)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in items:
        name = f"{prefix}[{key}]" if isinstance(key, int) else (f"{prefix}.{key}" if prefix else key)
        path_name = name
        yield path_name, (key,), item
        for sub_name, sub_path, sub in paths(item, name):
            yield sub_name, (key, *sub_path), sub


def mutate(body: dict[str, Any], path: tuple[str | int, ...], value: Any, delete: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(body)
    target = out
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


def typed_cases(endpoint: str, body: dict[str, Any]) -> list[Any]:
    cases = []
    for name, path, value in paths(body):
        if name in ("model", "stream"):  # model: any name (404 path tested elsewhere); stream changes the reply
            continue
        wrong = WRONG.get(type(value))
        if wrong is None or (isinstance(value, dict) and name.endswith("parameters")):
            continue
        cases.append(pytest.param(endpoint, mutate(body, path, wrong), name, id=f"{endpoint}-type-{name}"))
    return cases


REQUIRED = [("chat", ("messages",), "messages"), ("chat", ("messages", 1, "role"), "messages[1].role"),
            ("chat", ("messages", 2, "tool_calls", 0, "function"), "messages[2].tool_calls[0].function"),
            ("chat", ("messages", 2, "tool_calls", 0, "function", "name"),
             "messages[2].tool_calls[0].function.name"),
            ("chat", ("tools", 0, "function"), "tools[0].function"),
            ("chat", ("tools", 0, "function", "name"), "tools[0].function.name"),
            ("completion", ("prompt",), "prompt")]
CASES = typed_cases("chat", CHAT) + typed_cases("completion", COMPLETION) + [
    pytest.param(endpoint, mutate(CHAT if endpoint == "chat" else COMPLETION, path, None, delete=True), name,
                 id=f"{endpoint}-delete-{name}") for endpoint, path, name in REQUIRED]
CASES += [pytest.param("chat", mutate(CHAT, ("messages", 1, "content"), [{"type": "text"}]),
                       "messages[1].content[0].text", id="chat-part-without-text"),
          pytest.param("chat", mutate(CHAT, ("messages", 1, "content"), [{"type": "image", "text": "x"}]),
                       "messages[1].content[0].type", id="chat-part-unknown-type"),
          pytest.param("chat", mutate(CHAT, ("messages",), list(reversed(CHAT["messages"]))), "messages",
                       id="chat-reordered-roles"),
          pytest.param("chat", mutate(CHAT, ("messages",), CHAT["messages"][:3]), "messages",
                       id="chat-ends-with-assistant")]
URL = {"chat": "/v1/chat/completions", "completion": "/v1/completions"}


@pytest.fixture(scope="module")
def client(tiny_tokenizer_json: str) -> Iterator[TestClient]:
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.conftest import make_tokenizer
    from tests.unit.interfaces.api.conftest import HERMES_TEMPLATE
    from tunelab.config.schema import InferSection
    from tunelab.interfaces.api.app import create_app
    from tunelab.interfaces.api.state import build_server

    tokenizer = make_tokenizer(tiny_tokenizer_json, HERMES_TEMPLATE)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                         max_position_embeddings=1024)).eval()
    server = build_server(tokenizer, model, InferSection(do_sample=False, max_new_tokens=4), "tiny", 1024, 8, None)
    with TestClient(create_app(server)) as test_client:
        yield test_client


def check_error(response: Any, param: str) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    error = response.json()["error"]
    assert param in error["message"], error
    for internal in (".str", "list[", "function-", ".dict[", ".int", ".float", ".bool", "literal["):
        assert internal not in (error["param"] or "") + error["message"].split(":")[0], error
    return error


@pytest.mark.parametrize(("endpoint", "body", "param"), CASES)
def test_field_named(endpoint: str, body: dict[str, Any], param: str, client: TestClient) -> None:
    error = check_error(client.post(URL[endpoint], json=body), param)
    if param != "messages" or "role" not in error["message"]:
        assert error["param"] is not None and error["param"].startswith(param.split(".")[0].split("[")[0]), error


def test_the_valid_bodies_answer(client: TestClient) -> None:
    for endpoint, body in (("chat", CHAT), ("completion", COMPLETION)):
        response = client.post(URL[endpoint], json=body)
        assert response.status_code == 200, response.text


RAW = {"truncated": (json.dumps(CHAT)[:40].encode(), "JSON"),
       "invalid-bytes": (json.dumps(CHAT).encode().replace(b"Hi", b"H\xff"), "JSON"),
       "duplicate-key": (json.dumps(CHAT).replace('"temperature": 0.5', '"temperature": 0.5, "temperature": 9')
                         .encode(), "temperature"),
       "duplicate-nested-key": (json.dumps(CHAT).replace('"content": "Hi"', '"content": "Hi", "content": "Ho"')
                                .encode(), "messages[1]"),
       "top-level-list": (json.dumps([CHAT]).encode(), "JSON object")}


@pytest.mark.parametrize("name", list(RAW))
def test_raw_bodies(name: str, client: TestClient) -> None:
    data, words = RAW[name]
    response = client.post(URL["chat"], content=data, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]["message"], response.json()
