"""/v1/chat/completions and /v1/models on the tiny Llama: answers, streams, usage, stop strings, n, tools."""

from __future__ import annotations

import json

import openai

from tunelab.config.schema import InferSection

from .conftest import HERMES_TEMPLATE, MODEL_ID, chat_body, scripted, sse_events

WEATHER = [{"type": "function", "function": {"name": "weather", "description": "Weather in a city",
                                             "parameters": {"type": "object",
                                                            "properties": {"city": {"type": "string"}}}}}]
CALL_TEXT = 'Let me check.<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call>'


def answer(client, **fields) -> dict:
    response = client.post("/v1/chat/completions", json=chat_body(**fields))
    assert response.status_code == 200, response.text
    return response.json()


def stream_text(events: list) -> dict[int, str]:
    texts: dict[int, str] = {}
    for event in events[:-1]:
        for choice in event["choices"]:
            texts[choice["index"]] = texts.get(choice["index"], "") + (choice["delta"].get("content") or "")
    return texts


def test_models_and_health(client):
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == [MODEL_ID]
    assert client.get(f"/v1/models/{MODEL_ID}").json()["id"] == MODEL_ID
    assert client.get("/health").json()["status"] == "ok"


def test_answer_has_openai_shape_and_usage(client, tiny_tokenizer):
    body = answer(client)
    assert body["object"] == "chat.completion" and body["model"] == MODEL_ID and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "length"
    prompt = tiny_tokenizer.apply_chat_template([{"role": "user", "content": "Hello there"}],
                                                add_generation_prompt=True, tokenize=False)
    usage = body["usage"]
    assert usage["prompt_tokens"] == len(tiny_tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert usage["completion_tokens"] == 8 and usage["total_tokens"] == usage["prompt_tokens"] + 8


def test_max_tokens_and_max_completion_tokens(client):
    assert answer(client, max_tokens=3)["usage"]["completion_tokens"] == 3
    assert answer(client, max_completion_tokens=5, max_tokens=2)["usage"]["completion_tokens"] == 5


def test_stream_equals_the_whole_answer(client):
    whole = answer(client, max_tokens=12)["choices"][0]["message"]["content"]
    with client.stream("POST", "/v1/chat/completions", json=chat_body(max_tokens=12, stream=True)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert events[-2]["choices"][0]["finish_reason"] == "length" and "usage" not in events[-2]
    assert stream_text(events)[0] == whole


def test_stream_include_usage_sends_a_last_usage_chunk(client):
    with client.stream("POST", "/v1/chat/completions",
                       json=chat_body(stream=True, stream_options={"include_usage": True})) as response:
        events = sse_events(response)
    last = events[-2]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 8
    assert all(e["usage"] is None for e in events[:-2])


def test_stop_string_cuts_text_whole_and_streamed(client):
    full = answer(client, max_tokens=12)["choices"][0]["message"]["content"]
    stop = full[4:6]
    expected = full[:full.find(stop)]
    body = answer(client, max_tokens=12, stop=[stop, "never-there"])
    assert body["choices"][0]["message"]["content"] == expected and body["choices"][0]["finish_reason"] == "stop"
    with client.stream("POST", "/v1/chat/completions", json=chat_body(max_tokens=12, stop=stop, stream=True)) as r:
        events = sse_events(r)
    assert stream_text(events)[0] == expected and events[-2]["choices"][0]["finish_reason"] == "stop"


def test_n_choices_and_seeded_sampling(make_client):
    client = make_client(settings=InferSection(do_sample=True, max_new_tokens=8, top_k=0, top_p=1.0))
    body = answer(client, n=3, seed=7, temperature=1.5)
    texts = [c["message"]["content"] for c in body["choices"]]
    assert [c["index"] for c in body["choices"]] == [0, 1, 2] and len(set(texts)) > 1
    assert body["usage"]["completion_tokens"] == 24
    again = [c["message"]["content"] for c in answer(client, n=3, seed=7, temperature=1.5)["choices"]]
    assert again == texts
    greedy = [c["message"]["content"] for c in answer(client, n=2, temperature=0)["choices"]]
    assert greedy[0] == greedy[1]


def test_content_parts_and_system_are_rendered(client):
    parts = chat_body() | {"messages": [{"role": "developer", "content": "Be brief."},
                                        {"role": "user", "content": [{"type": "text", "text": "Hello"},
                                                                     {"type": "text", "text": "there"}]}]}
    response = client.post("/v1/chat/completions", json=parts)
    assert response.status_code == 200, response.text


def test_openai_client_plain_and_stream(client):
    api = openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=client, max_retries=0)
    whole = api.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}], max_tokens=6)
    assert whole.usage.completion_tokens == 6
    chunks = list(api.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}],
                                              max_tokens=6, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens


def tool_client(make_client, tiny_tokenizer, tiny_llama, text: str):
    """A server whose template is Hermes-style and whose model answers text (the tool prompts are long for the tiny
    tokenizer: the context limit is raised, generation is scripted, so the model never sees them)."""
    tiny_tokenizer.chat_template = HERMES_TEMPLATE
    tiny_llama.config.max_position_embeddings = 4096
    return make_client(tokenizer=tiny_tokenizer, generate_fn=scripted(tiny_tokenizer, text),
                       settings=InferSection(do_sample=False, max_new_tokens=200))


def test_tool_call_end_to_end(make_client, tiny_tokenizer, tiny_llama):
    client = tool_client(make_client, tiny_tokenizer, tiny_llama, CALL_TEXT)
    api = openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=client, max_retries=0)
    reply = api.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Weather?"}],
                                        tools=WEATHER)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me check."
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function" and call.function.name == "weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    off = api.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Weather?"}],
                                      tools=WEATHER, tool_choice="none")
    assert off.choices[0].finish_reason == "stop" and "<tool_call>" in off.choices[0].message.content


def test_tool_call_streamed(make_client, tiny_tokenizer, tiny_llama):
    client = tool_client(make_client, tiny_tokenizer, tiny_llama, CALL_TEXT)
    api = openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=client, max_retries=0)
    chunks = list(api.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Weather?"}],
                                              tools=WEATHER, stream=True))
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert content == "Let me check." and "<tool" not in content
    assert len(calls) == 1 and calls[0].function.name == "weather" and calls[0].index == 0
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_results_in_history_are_rendered(make_client, tiny_tokenizer, tiny_llama):
    client = tool_client(make_client, tiny_tokenizer, tiny_llama, "It is sunny in Paris.")
    messages = [{"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    body = client.post("/v1/chat/completions", json={"messages": messages, "tools": WEATHER}).json()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "It is sunny in Paris."}
    assert body["choices"][0]["finish_reason"] == "stop"


def test_an_answer_cut_inside_a_character_ends_before_it(make_client, cjk_tokenizer):
    """max_tokens cuts between the two tokens of 中: whole and streamed, the answer is 好, finish_reason length;
    a U+FFFD the model wrote as a character is kept."""
    client = make_client(tokenizer=cjk_tokenizer, generate_fn=scripted(cjk_tokenizer, "好中文\ufffd中"))
    for max_tokens, text in [(4, "好"), (8, "好中文"), (10, "好中文\ufffd")]:
        whole = answer(client, max_tokens=max_tokens)
        assert whole["choices"][0]["message"]["content"] == text
        assert whole["choices"][0]["finish_reason"] == "length" and whole["usage"]["completion_tokens"] == max_tokens
        with client.stream("POST", "/v1/chat/completions", json=chat_body(max_tokens=max_tokens, stream=True)) as reply:
            events = sse_events(reply)
        deltas = [c["delta"].get("content") or "" for e in events[:-1] for c in e["choices"]]
        assert "".join(deltas) == text
        assert events[-2]["choices"][0]["finish_reason"] == "length"


def test_a_completion_cut_inside_a_character_ends_before_it(make_client, cjk_tokenizer):
    client = make_client(tokenizer=cjk_tokenizer, generate_fn=scripted(cjk_tokenizer, "好中文"))
    body = {"model": MODEL_ID, "prompt": "用中文问好", "max_tokens": 4}
    whole = client.post("/v1/completions", json=body).json()["choices"][0]
    assert (whole["text"], whole["finish_reason"]) == ("好", "length")
    with client.stream("POST", "/v1/completions", json={**body, "stream": True}) as reply:
        events = sse_events(reply)
    assert "".join(c["text"] for e in events[:-1] for c in e["choices"]) == "好"
