"""Back-pressure and observability: a full queue answers 429 with Retry-After, a slow request 504, /health reports
the queue and the running rows, /metrics the counters in Prometheus text."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from tunelab.config.schema import InferSection
from tunelab.infer.batch_generate import GenResult

from .conftest import chat_body, sse_events


def gated(gate: threading.Event) -> Any:
    """A generate() that waits for the gate, then answers one token per row."""

    def generate(model: Any, requests: list[Any], pad_id: int, on_token: Any = None) -> list[GenResult]:
        gate.wait(10)
        for row, _ in enumerate(requests):
            on_token(row, 10)
        return [GenResult([10], "stop") for _ in requests]

    return generate


def wait_for(client: Any, **wanted: int) -> dict[str, Any]:
    """/health once it shows the wanted values (5 s at most)."""
    for _ in range(250):
        health = client.get("/health").json()
        if all(health[key] == value for key, value in wanted.items()):
            return health
        time.sleep(0.02)
    raise AssertionError(f"/health never showed {wanted}: {health}")


def test_a_full_queue_answers_429_with_retry_after_and_the_others_complete(make_client: Any) -> None:
    gate = threading.Event()
    client = make_client(generate_fn=gated(gate), max_batch=1, max_queue=1)
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(
        client.post("/v1/chat/completions", json=chat_body()).status_code)) for _ in range(2)]
    threads[0].start()
    wait_for(client, active_rows=1)
    threads[1].start()
    health = wait_for(client, active_rows=1, queue_depth=1)
    assert (health["max_batch"], health["max_queue"]) == (1, 1)
    refused = client.post("/v1/chat/completions", json=chat_body())
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
    error = refused.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "requests")
    assert "--max-queue is 1" in error["message"]
    streamed = client.post("/v1/chat/completions", json=chat_body(stream=True))
    assert streamed.status_code == 429  # refused before the stream starts, never an open stream that waits
    gate.set()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]
    assert wait_for(client, active_rows=0, queue_depth=0)["status"] == "ok"


def test_a_request_past_its_timeout_answers_504_and_frees_its_row(make_client: Any) -> None:
    def slow(model: Any, requests: list[Any], pad_id: int, on_token: Any = None) -> list[GenResult]:
        out = []
        for token in range(10, 60):
            time.sleep(0.01)
            out.append(token)
            if on_token(0, token) is False:
                return [GenResult(out, "cancelled")]
        return [GenResult(out, "length")]

    client = make_client(generate_fn=slow, request_timeout=0.1,
                         settings=InferSection(do_sample=False, max_new_tokens=50))
    response = client.post("/v1/chat/completions", json=chat_body())
    assert response.status_code == 504 and response.json()["error"]["code"] == "timeout"
    events = sse_events(client.post("/v1/chat/completions", json=chat_body(stream=True)))
    assert any(isinstance(e, dict) and e.get("error", {}).get("code") == "timeout" for e in events)
    assert wait_for(client, active_rows=0)["request_timeout_s"] == 0.1


def test_metrics_in_prometheus_text(client: Any) -> None:
    assert client.post("/v1/chat/completions", json=chat_body()).status_code == 200
    assert client.post("/v1/chat/completions", json={"messages": "nope"}).status_code == 400
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'tunelab_requests_total{route="/v1/chat/completions",status="200"} 1' in text
    assert 'tunelab_requests_total{route="/v1/chat/completions",status="400"} 1' in text
    generated = int(re.search(r"^tunelab_generated_tokens_total (\d+)$", text, re.M).group(1))
    assert 0 < generated <= 8 and re.search(r"^tunelab_prompt_tokens_total [1-9]\d*$", text, re.M)
    assert 'tunelab_time_to_first_token_seconds_bucket{le="+Inf"} 1' in text
    assert "tunelab_request_latency_seconds_count 1" in text
    assert "tunelab_queue_depth 0" in text and "tunelab_active_rows 0" in text and "tunelab_max_batch 8" in text
    for line in text.splitlines():  # every sample line: a name, optional labels, a number
        assert line.startswith("# ") or re.fullmatch(r"[a-z_]+(\{[^}]*\})? [0-9.e+-]+", line), line


def test_capacity_flags() -> None:
    import pytest

    from tunelab.interfaces.api.serve import Capacity, ServeError, capacity
    from tunelab.interfaces.cli import build_parser

    args = build_parser().parse_args(["api", "c.yaml", "--max-queue", "5", "--request-timeout", "0"])
    assert capacity(8, args.max_queue, args.request_timeout) == Capacity(8, 5, None)  # 0: no time limit
    assert capacity(8, None, None) == Capacity(8, 64, 600.0)
    with pytest.raises(ServeError, match="--max-queue 0: use 1 or more"):
        capacity(8, 0, None)
    with pytest.raises(ServeError, match="--request-timeout -1"):
        capacity(8, None, -1)


def test_a_client_that_leaves_while_tokens_flow_is_noticed(monkeypatch: Any) -> None:
    """A non-streaming request whose tokens keep coming still checks for its client every poll interval."""
    import asyncio
    from types import SimpleNamespace

    import pytest

    from tunelab.infer.engine import TextEvent
    from tunelab.interfaces.api import run as run_module
    from tunelab.interfaces.api.errors import APIError

    monkeypatch.setattr(run_module, "DISCONNECT_POLL_SECONDS", 0.05)
    job = SimpleNamespace(cancelled=threading.Event())

    class Gone:
        async def is_disconnected(self) -> bool:
            return True

    async def scenario() -> None:
        events: asyncio.Queue[Any] = asyncio.Queue()
        run = run_module.Run(jobs=[job], events=events)  # type: ignore[list-item]

        async def tokens() -> None:
            while True:  # a long answer: tokens never pause
                events.put_nowait(TextEvent(0, "x"))
                await asyncio.sleep(0.01)

        feeder = asyncio.create_task(tokens())
        with pytest.raises(APIError) as left:
            await asyncio.wait_for(run_module.collect(run, Gone()), 2)  # type: ignore[arg-type]
        feeder.cancel()
        assert left.value.status == 499

    asyncio.run(scenario())
    assert job.cancelled.is_set()
