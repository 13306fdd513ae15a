"""Every error answers OpenAI's body with the right status: auth, JSON, fields, model, roles, length, params."""

from __future__ import annotations

import pytest

from .conftest import MODEL_ID, chat_body


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_api_key_is_required_when_set(make_client):
    client = make_client(api_key="sekret")
    assert error_of(client.get("/v1/models"), 401)["code"] == "invalid_api_key"
    wrong = client.get("/v1/models", headers={"Authorization": "Bearer nope"})
    assert "incorrect API key" in error_of(wrong, 401)["message"]
    assert client.get("/v1/models", headers={"Authorization": "Bearer sekret"}).status_code == 200
    assert client.get("/health").status_code == 200


def test_malformed_json_and_non_objects(client):
    error = error_of(client.post("/v1/chat/completions", content=b"{oops"), 400)
    assert "not valid JSON" in error["message"] and error["code"] == "invalid_json"
    assert "JSON object" in error_of(client.post("/v1/chat/completions", content=b"[1]"), 400)["message"]


@pytest.mark.parametrize(("body", "param"), [
    ({"model": MODEL_ID}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    (chat_body(temperature=3), "temperature"),
    (chat_body(max_tokens=0), "max_tokens"),
    (chat_body(n=0), "n"),
])
def test_validation_errors_name_the_field(client, body, param):
    error = error_of(client.post("/v1/chat/completions", json=body), 400)
    assert error["param"] == param and param in error["message"]


def test_unknown_model_is_404(client):
    error = error_of(client.post("/v1/chat/completions", json=chat_body() | {"model": "gpt-9"}), 404)
    assert error["code"] == "model_not_found" and MODEL_ID in error["message"]
    assert error_of(client.get("/v1/models/gpt-9"), 404)["code"] == "model_not_found"
    assert error_of(client.post("/v1/completions", json={"model": "gpt-9", "prompt": "x"}), 404)["param"] == "model"


@pytest.mark.parametrize(("messages", "words"), [
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "must end with a user or tool"),
    ([{"role": "user", "content": "hi"}, {"role": "tool", "content": "42", "tool_call_id": "c1"}],
     "must follow an assistant message with tool_calls"),
    ([{"role": "user", "content": "hi"}, {"role": "system", "content": "late"}], "must come first"),
    ([{"role": "system", "content": "alone"}], "must end with a user or tool"),
])
def test_bad_role_order(client, messages, words):
    error = error_of(client.post("/v1/chat/completions", json={"messages": messages}), 400)
    assert words in error["message"] and error["param"].startswith("messages[")


def test_context_too_long_names_the_numbers(make_client):
    client = make_client(cutoff_len=32)
    long = error_of(client.post("/v1/chat/completions", json=chat_body("Hello there " * 20)), 400)
    assert long["code"] == "context_length_exceeded" and "maximum context length is 32" in long["message"]
    assert "cutoff_len" in long["message"] and long["param"] == "messages"
    asked = error_of(client.post("/v1/chat/completions", json=chat_body(max_tokens=100)), 400)
    assert asked["param"] == "max_tokens" and "100 in the completion" in asked["message"]
    prompt = error_of(client.post("/v1/completions", json={"prompt": "Hello there " * 20}), 400)
    assert prompt["param"] == "prompt"


def test_default_length_shrinks_to_fit(make_client):
    from tunelab.config.schema import InferSection

    client = make_client(cutoff_len=20, settings=InferSection(do_sample=False, max_new_tokens=500))
    answer = client.post("/v1/chat/completions", json=chat_body("Hi")).json()
    assert answer["usage"]["total_tokens"] <= 20


@pytest.mark.parametrize(("field", "value"), [("presence_penalty", 0.5), ("frequency_penalty", -1.0),
                                              ("logprobs", True), ("response_format", {"type": "json_object"})])
def test_unsupported_parameters(client, field, value):
    error = error_of(client.post("/v1/chat/completions", json=chat_body(**{field: value})), 400)
    assert error["code"] == "unsupported_parameter" and error["param"] == field and field in error["message"]


def test_zero_penalties_are_accepted(client):
    response = client.post("/v1/chat/completions", json=chat_body(presence_penalty=0, frequency_penalty=0.0))
    assert response.status_code == 200


def test_tools_without_a_template_format(client):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    error = error_of(client.post("/v1/chat/completions", json=chat_body(tools=tools)), 400)
    assert error["param"] == "tools" and "no tool-call format" in error["message"]
    assert client.post("/v1/chat/completions", json=chat_body(tools=tools, tool_choice="none")).status_code == 200


def test_unknown_route_and_method(client):
    assert "/v1/chat/completions" in error_of(client.get("/v1/engines"), 404)["message"]
    error_of(client.get("/v1/chat/completions"), 405)


def test_openai_client_raises_its_error_classes(client):
    import openai

    api = openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=client, max_retries=0)
    with pytest.raises(openai.NotFoundError) as missing:
        api.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        api.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "hi"}], presence_penalty=1)
    assert bad.value.param == "presence_penalty"
