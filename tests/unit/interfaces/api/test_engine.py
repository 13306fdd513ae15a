"""The engine thread: concurrent requests share batches, answers match the request alone, cancels free rows."""

from __future__ import annotations

import threading

from tunelab.config.schema import InferSection
from tunelab.infer.batch_generate import GenResult

from .conftest import chat_body, sse_events

PROMPTS = ["Hello there", "What is the capital of France?", "Who are you?", "Translate to French: cat",
           "Write a poem about the sea.", "Give a title.", "Answer in one word.", "Summarize the text."]


def test_concurrent_clients_get_the_answers_they_get_alone(make_client):
    client = make_client(settings=InferSection(do_sample=False, max_new_tokens=10))
    alone = {p: client.post("/v1/chat/completions", json=chat_body(p)).json()["choices"][0]["message"]["content"]
             for p in PROMPTS}
    together: dict[str, str] = {}
    errors: list[BaseException] = []

    def ask(prompt: str, stream: bool) -> None:
        try:
            if stream:
                with client.stream("POST", "/v1/chat/completions", json=chat_body(prompt, stream=True)) as r:
                    events = sse_events(r)
                together[prompt] = "".join(c["delta"].get("content") or "" for e in events[:-1] for c in e["choices"])
            else:
                body = client.post("/v1/chat/completions", json=chat_body(prompt)).json()
                together[prompt] = body["choices"][0]["message"]["content"]
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(p, i % 2 == 0)) for i, p in enumerate(PROMPTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert together == alone
    assert client.get("/health").json()["largest_batch"] > 1


def test_a_client_leaving_mid_stream_cancels_its_job(make_client, tiny_tokenizer):
    seen: list[bool] = []
    release = threading.Event()

    def slow_generate(model, requests, pad_id, on_token=None):
        results = []
        for row, _ in enumerate(requests):
            out = []
            for token in range(10, 60):
                out.append(token)
                keep = on_token(row, token)
                seen.append(keep)
                if keep is False:
                    break
                release.wait(0.02)
            results.append(GenResult(out, "cancelled" if seen[-1] is False else "length"))
        return results

    client = make_client(generate_fn=slow_generate, settings=InferSection(do_sample=False, max_new_tokens=50))
    with client.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as response:
        for line in response.iter_lines():
            if '"content": "' in line and '"content": ""' not in line:
                break
    deadline = threading.Event()
    for _ in range(100):
        if seen and seen[-1] is False:
            break
        deadline.wait(0.02)
    assert seen[-1] is False and len(seen) < 50
    assert client.get("/health").json()["status"] == "ok"


def test_a_failed_batch_answers_500_and_the_server_goes_on(make_client):
    def broken(model, requests, pad_id, on_token=None):
        raise RuntimeError("out of memory")

    client = make_client(generate_fn=broken)
    response = client.post("/v1/chat/completions", json=chat_body())
    assert response.status_code == 500 and "out of memory" in response.json()["error"]["message"]
    assert client.post("/v1/chat/completions", json=chat_body()).status_code == 500
