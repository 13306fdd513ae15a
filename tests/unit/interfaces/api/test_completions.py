"""/v1/completions: raw prompts without the chat template, lists of prompts, n, streams, stop strings."""

from __future__ import annotations

from .conftest import MODEL_ID, sse_events


def complete(client, **fields) -> dict:
    response = client.post("/v1/completions", json={"model": MODEL_ID, **fields})
    assert response.status_code == 200, response.text
    return response.json()


def test_completion_of_a_raw_prompt(client, tiny_tokenizer):
    body = complete(client, prompt="The capital of France", max_tokens=5)
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    assert body["usage"] == {"prompt_tokens": len(tiny_tokenizer("The capital of France")["input_ids"]),
                             "completion_tokens": 5, "total_tokens": body["usage"]["prompt_tokens"] + 5}
    assert body["choices"][0]["finish_reason"] == "length"


def test_prompt_list_times_n_choices_in_order(client):
    body = complete(client, prompt=["Hello there", "Paris is"], n=2, max_tokens=4)
    texts = [c["text"] for c in body["choices"]]
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    assert texts[0] == texts[1] and texts[2] == texts[3]
    assert texts[0] == complete(client, prompt="Hello there", max_tokens=4)["choices"][0]["text"]
    assert texts[2] == complete(client, prompt="Paris is", max_tokens=4)["choices"][0]["text"]


def test_streamed_completion_with_stop_and_usage(client):
    full = complete(client, prompt="Hello there", max_tokens=10)["choices"][0]["text"]
    stop = full[3:5]
    with client.stream("POST", "/v1/completions", json={"prompt": "Hello there", "max_tokens": 10, "stop": stop,
                                                        "stream": True,
                                                        "stream_options": {"include_usage": True}}) as response:
        events = sse_events(response)
    assert events[-1] == "[DONE]" and events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] > 0
    text = "".join(c["text"] for e in events[:-2] for c in e["choices"])
    assert text == full[:full.find(stop)]
    assert events[-3]["choices"][0]["finish_reason"] == "stop"


def test_completion_refusals(client):
    for field, value in [("echo", True), ("suffix", "end"), ("best_of", 3), ("presence_penalty", 1.0)]:
        response = client.post("/v1/completions", json={"prompt": "Hi", field: value})
        assert response.status_code == 400 and response.json()["error"]["param"] == field
    empty = client.post("/v1/completions", json={"prompt": ""})
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "prompt"
