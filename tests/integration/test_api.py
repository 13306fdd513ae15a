"""`tunelab api` on the real SmolLM2, driven with the official openai client: answers, streams, errors, key,
and 16 concurrent streaming clients that each get the answer they get alone."""

from __future__ import annotations

import threading

import httpx
import openai
import pytest

from .conftest import API_KEY as KEY

MODEL = "smollm2-135m-instruct"
QUESTIONS = ["What is the capital of France?", "Name a color.", "What is 2+2?", "Say hello.",
             "What is the largest ocean?", "Name a fruit.", "Who wrote Hamlet?", "What do bees make?",
             "What is the boiling point of water?", "Name a planet.", "What is the opposite of hot?",
             "Translate 'cat' to French.", "How many days are in a week?", "What language is spoken in Spain?",
             "Name a musical instrument.", "What is ice made of?"]


@pytest.fixture(scope="module")
def server(api_server: str) -> str:
    """The shared API server (tests/integration/conftest.py): the base model with the key KEY."""
    return api_server


@pytest.fixture
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=120)


def ask(client: openai.OpenAI, question: str, max_tokens: int = 16) -> str:
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}],
                                           max_tokens=max_tokens, temperature=0)
    return reply.choices[0].message.content


def ask_streaming(client: openai.OpenAI, question: str, max_tokens: int = 16) -> tuple[str, list]:
    chunks = list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}],
                                                 max_tokens=max_tokens, temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks


def test_models_and_a_plain_answer(client):
    assert [m.id for m in client.models.list()] == [MODEL]
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTIONS[0]}],
                                           max_tokens=16)
    assert "Paris" in reply.choices[0].message.content
    assert reply.usage.completion_tokens <= 16 and reply.usage.prompt_tokens > 10


def test_stream_with_usage_equals_the_plain_answer(client):
    text, chunks = ask_streaming(client, QUESTIONS[2])
    assert text == ask(client, QUESTIONS[2])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_errors(client):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "word " * 600}])
    assert too_long.value.code == "context_length_exceeded" and "512" in too_long.value.message


def test_api_key(server):
    assert httpx.get(f"{server}/v1/models").status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0).models.list()
    assert httpx.get(f"{server}/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_sixteen_concurrent_streams_get_their_own_answers(server, client):
    alone = {q: ask(client, q) for q in QUESTIONS}
    got: dict[str, str] = {}
    errors: list[BaseException] = []

    def worker(question: str) -> None:
        try:
            got[question] = ask_streaming(client, question)[0]
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(q,)) for q in QUESTIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert got == alone
    assert httpx.get(f"{server}/health").json()["largest_batch"] > 1
