"""`tunelab api` on SmolLM2 under load: a request that arrives while another decodes joins its batch; 32 concurrent
clients with random disconnects, malformed requests and an oversized prompt, after which the server's memory is back
near its idle level and it still answers."""

from __future__ import annotations

import random
import threading
import time

import httpx
import openai
import psutil
import pytest

from tunelab.infer.engine import TRIM_AFTER_IDLE_SECONDS

from .clirun import QUICKSTART
from .conftest import API_KEY, serving
from .test_api import MODEL, QUESTIONS, ask, ask_streaming

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
MAX_TOKENS = 12
LONG = "Write a long story about a dragon who learns to bake bread."


def server_process(base: str) -> psutil.Process:
    """The `tunelab api` child process listening at base."""
    port = base.rsplit(":", 1)[1]
    for child in psutil.Process().children(recursive=True):
        if f"{port}" in child.cmdline():
            return child
    raise AssertionError(f"no server process on port {port}")


@pytest.fixture(scope="module")
def loaded_server(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, psutil.Process]:
    """A server of its own (its memory is measured): 16 rows decoding, 64 waiting, 600 s per request (generous: a
    shared machine can be slow)."""
    out = tmp_path_factory.mktemp("api_load")
    with serving([QUICKSTART, f"output_dir={out / 'none'}", "cutoff_len=512", "--max-batch", "16",
                  "--max-queue", "64", "--request-timeout", "600"], out / "server.log", 180) as base:
        yield base, server_process(base)


def client_of(base: str, timeout: float = 600) -> openai.OpenAI:
    """An openai client of the server."""
    return openai.OpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=0, timeout=timeout)


def test_a_request_joins_a_running_batch_and_gets_its_answer_alone(api_server: str) -> None:
    """A short request sent while a long answer streams finishes first, with the answer it gets alone."""
    client = client_of(api_server)
    short_alone = ask(client, QUESTIONS[2], max_tokens=8)
    long_alone = ask(client, LONG, max_tokens=48)
    finished: list[str] = []
    pieces: list[str] = []
    started = threading.Event()

    def long_stream() -> None:
        for chunk in client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": LONG}],
                                                    max_tokens=48, temperature=0, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
                started.set()
        finished.append("long")

    thread = threading.Thread(target=long_stream)
    thread.start()
    assert started.wait(60)
    short = ask(client, QUESTIONS[2], max_tokens=8)
    finished.append("short")
    thread.join(120)
    assert short == short_alone and "".join(pieces) == long_alone
    assert len(long_alone) > len(short_alone) and finished == ["short", "long"]  # it did not wait for the long one


def well_formed(base: str, question: str, stream: bool) -> str:
    """A normal request's answer."""
    client = client_of(base)
    return ask_streaming(client, question, MAX_TOKENS)[0] if stream else ask(client, question, MAX_TOKENS)


def leaving(base: str, question: str, stream: bool) -> None:
    """A client that goes away mid-answer: a stream closed after its first piece, or a request given up."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": question}], "max_tokens": 200,
            "temperature": 0, "stream": stream}
    try:
        if stream:
            with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, headers=HEADERS, timeout=600) as r:
                next(r.iter_lines())
        else:
            httpx.post(f"{base}/v1/chat/completions", json=body, headers=HEADERS, timeout=0.3)
    except httpx.TimeoutException:
        pass


MALFORMED = [b"{not json", b'{"model": "smollm2-135m-instruct"}', b'{"messages": [{"role": "user", "content": "hi"}], '
             b'"temperature": -1}', b'{"messages": "hi"}', b'{"model": "gpt-x", "messages": [{"role": "user", '
             b'"content": "hi"}]}']


def malformed(base: str, raw: bytes) -> int:
    """A broken request's status."""
    return httpx.post(f"{base}/v1/chat/completions", content=raw, headers=HEADERS, timeout=600).status_code


def load_plan(questions: list[str], rng: random.Random) -> list[tuple[str, object]]:
    """32 clients in a random order: 20 well-formed (a third streaming), 6 that leave, 5 malformed, 1 oversized."""
    plan: list[tuple[str, object]] = [("good", (questions[i % 8], i % 3 == 0)) for i in range(20)]
    plan += [("leave", (QUESTIONS[i], i % 2 == 0)) for i in range(6)]
    plan += [("bad", raw) for raw in MALFORMED] + [("huge", None)]
    rng.shuffle(plan)
    return plan


def test_thirty_two_clients_with_disconnects_and_bad_requests(loaded_server: tuple[str, psutil.Process]) -> None:
    base, process = loaded_server
    client = client_of(base)
    questions = QUESTIONS[:8]
    alone = {q: ask(client, q, MAX_TOKENS) for q in questions}  # also warms the server up
    time.sleep(TRIM_AFTER_IDLE_SECONDS + 1.0)  # the idle engine gives its freed memory back
    idle_rss = process.memory_info().rss
    rng = random.Random(19)
    plan = load_plan(questions, rng)
    answers: dict[int, str] = {}
    statuses: dict[int, int] = {}
    errors: list[BaseException] = []

    def run(index: int, kind: str, arg: object) -> None:
        try:
            time.sleep(rng.random() * 0.5)
            if kind == "good":
                question, stream = arg  # type: ignore[misc]
                answers[index] = well_formed(base, question, stream)
            elif kind == "leave":
                leaving(base, *arg)  # type: ignore[misc]
            elif kind == "bad":
                statuses[index] = malformed(base, arg)  # type: ignore[arg-type]
            else:
                body = {"model": MODEL, "messages": [{"role": "user", "content": "word " * 5000}]}
                statuses[index] = httpx.post(f"{base}/v1/chat/completions", json=body, headers=HEADERS,
                                             timeout=600).status_code
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, kind, arg)) for i, (kind, arg) in enumerate(plan)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    assert not errors, errors
    expected = {i: alone[arg[0]] for i, (kind, arg) in enumerate(plan) if kind == "good"}  # type: ignore[index]
    assert answers == expected
    assert sorted(statuses.values()) == [400, 400, 400, 400, 400, 404]
    for _ in range(150):  # the rows of clients that left end at their next token or disconnect poll (1 s)
        health = httpx.get(f"{base}/health").json()
        if health["active_rows"] == 0 and health["queue_depth"] == 0:
            break
        time.sleep(0.2)
    assert (health["active_rows"], health["queue_depth"]) == (0, 0)
    assert ask(client, QUESTIONS[3], MAX_TOKENS) == alone[QUESTIONS[3]]
    time.sleep(TRIM_AFTER_IDLE_SECONDS + 1.0)
    rss = process.memory_info().rss
    assert rss < idle_rss * 1.15 + 64 * 2**20, f"RSS {rss / 2**20:.0f} MiB after the load, {idle_rss / 2**20:.0f} idle"
    metrics = httpx.get(f"{base}/metrics").text
    assert 'tunelab_answers_total{outcome="cancelled"}' in metrics
