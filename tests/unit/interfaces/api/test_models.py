"""Several model ids on one server: /v1/models lists the base and each adapter, a request's `model` sets the
adapter its rows are generated with, an unknown id is OpenAI's 404 listing the ids."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import scripted
from tunelab.interfaces.api.app import create_app
from tunelab.interfaces.api.models import several_adapters
from tunelab.interfaces.api.state import build_server

from .conftest import GREEDY, MODEL_ID, chat_body, sse_events


def recording(tokenizer: Any, seen: list[str | None]) -> Any:
    """The scripted generate(), noting the adapter of every row it is given."""
    answer = scripted(tokenizer, "ok")

    def generate(model: Any, requests: list[Any], pad_id: int, on_token: Any = None) -> Any:
        seen.extend(request.adapter for request in requests)
        return answer(model, requests, pad_id, on_token)

    return generate


def with_adapters(model: Any, names: list[str]) -> Any:
    """The model with a fresh LoRA loaded under each name (the engine checks a row's adapter is loaded)."""
    from peft import LoraConfig, get_peft_model

    if not names:
        return model
    config = LoraConfig(r=2, target_modules=["q_proj"])
    peft_model = get_peft_model(model, config, adapter_name=names[0])
    for name in names[1:]:
        peft_model.add_adapter(name, config)
    return peft_model


def serving(tiny_tokenizer: Any, tiny_llama: Any, seen: list[str | None], names: list[str]) -> TestClient:
    routes = several_adapters(MODEL_ID, names) if names else None
    server = build_server(tiny_tokenizer, with_adapters(tiny_llama, names), GREEDY, MODEL_ID, 2048, 8,
                          generate_fn=recording(tiny_tokenizer, seen), routes=routes)
    return TestClient(create_app(server))


def test_models_lists_base_and_adapters(tiny_tokenizer: Any, tiny_llama: Any) -> None:
    with serving(tiny_tokenizer, tiny_llama, [], ["sql", "chat"]) as client:
        listed = client.get("/v1/models").json()
        assert [m["id"] for m in listed["data"]] == [MODEL_ID, "sql", "chat"]
        assert all(m["object"] == "model" and m["owned_by"] == "tunelab" for m in listed["data"])
        assert client.get("/v1/models/chat").json()["id"] == "chat"
        missing = client.get("/v1/models/nope")
        assert missing.status_code == 404
        error = missing.json()["error"]
        assert error["code"] == "model_not_found" and error["param"] == "model"
        assert f"'{MODEL_ID}', 'sql', 'chat'" in error["message"]


def test_model_field_picks_the_adapter(tiny_tokenizer: Any, tiny_llama: Any) -> None:
    seen: list[str | None] = []
    with serving(tiny_tokenizer, tiny_llama, seen, ["sql", "chat"]) as client:
        answer = client.post("/v1/chat/completions", json=chat_body(model="sql"))
        assert answer.status_code == 200 and answer.json()["model"] == "sql"
        assert client.post("/v1/chat/completions", json=chat_body(model=MODEL_ID)).json()["model"] == MODEL_ID
        body = chat_body()
        del body["model"]
        assert client.post("/v1/chat/completions", json=body).json()["model"] == MODEL_ID
        completion = client.post("/v1/completions", json={"model": "chat", "prompt": "Hi", "n": 2})
        assert completion.json()["model"] == "chat"
        with client.stream("POST", "/v1/chat/completions", json=chat_body(model="chat", stream=True)) as stream:
            events = sse_events(stream)
        assert {e["model"] for e in events if e != "[DONE]"} == {"chat"}
        unknown = client.post("/v1/chat/completions", json=chat_body(model="sq1"))
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    # the base model's id (and a request without model) answers with the base model alone: adapter ""
    assert seen == ["sql", "", "", "chat", "chat", "chat"]


def test_one_model_keeps_todays_behaviour(tiny_tokenizer: Any, tiny_llama: Any) -> None:
    seen: list[str | None] = []
    with serving(tiny_tokenizer, tiny_llama, seen, []) as client:
        assert [m["id"] for m in client.get("/v1/models").json()["data"]] == [MODEL_ID]
        assert client.post("/v1/chat/completions", json=chat_body()).json()["model"] == MODEL_ID
        assert client.post("/v1/chat/completions", json=chat_body(model="other")).status_code == 404
    assert seen == [None]  # the model as loaded, with the run's adapter when it has one
