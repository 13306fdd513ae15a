"""The remote client against a real loopback server that injects faults: retries, Retry-After, timeouts,
malformed replies, dropped connections, errors that are not retried, budgets, usage and rate limits."""

from __future__ import annotations

import asyncio
import time

import pytest
from fault_server import fault_server

from tunelab.remote.batch import Job, run_jobs
from tunelab.remote.client import Endpoint
from tunelab.remote.endpoint import EndpointSettings, Price
from tunelab.remote.errors import BudgetReached, RemoteError
from tunelab.remote.limits import Bucket


def settings(url: str, **extra: object) -> EndpointSettings:
    values: dict[str, object] = {"base_url": url, "model": "m", "timeout": 1.0, "backoff": 0.01, "max_retries": 5}
    values.update(extra)
    return EndpointSettings(**values)  # type: ignore[arg-type]


def ask(config: EndpointSettings, text: str = "hi") -> tuple[str, int, Endpoint]:
    async def go() -> tuple[str, int, Endpoint]:
        async with Endpoint(config) as endpoint:
            reply = await endpoint.chat([{"role": "user", "content": text}], max_tokens=8)
            return reply.text, reply.attempts, endpoint
    return asyncio.run(go())


@pytest.mark.parametrize("fault", ["429", "500", "hang", "malformed", "drop"])
def test_each_fault_is_retried_and_the_answer_arrives(fault: str) -> None:
    with fault_server([fault, fault], hang=2.0) as server:
        text, attempts, endpoint = ask(settings(server.base_url))
    assert text == "echo: hi"
    assert attempts == 3
    assert endpoint.usage.retries == 2 and endpoint.usage.requests == 3
    assert server.faults == [fault, fault, "ok"]


def test_retry_after_is_waited_for() -> None:
    with fault_server(["429"]) as server:  # the server asks for 0.2 s
        started = time.monotonic()
        ask(settings(server.base_url, backoff=0.0))
        assert time.monotonic() - started >= 0.2


def test_gives_up_after_max_retries_naming_the_endpoint_and_last_fault() -> None:
    with fault_server(["500"] * 4) as server:
        with pytest.raises(RemoteError, match=r"judge_base_url: .* failed 3 times; last: HTTP 500"):
            ask(settings(server.base_url, max_retries=2, where="judge_base_url"))


def test_client_errors_are_not_retried_and_say_the_fix() -> None:
    with fault_server(["401"]) as server:
        with pytest.raises(RemoteError, match="HTTP 401.*API key"):
            ask(settings(server.base_url))
        assert server.faults == ["401"]


def test_missing_key_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUNELAB_TEST_KEY", raising=False)
    with pytest.raises(RemoteError, match="TUNELAB_TEST_KEY.*not set"):
        Endpoint(settings("http://127.0.0.1:9/v1", api_key_env="TUNELAB_TEST_KEY"))


def test_key_is_read_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNELAB_TEST_KEY", "sk-secret")
    endpoint = Endpoint(settings("http://127.0.0.1:9/v1", api_key_env="TUNELAB_TEST_KEY"))
    assert endpoint.client.api_key == "sk-secret"


def test_batch_hands_over_every_answer_and_counts_failures() -> None:
    jobs = [Job(f"k{i}", [{"role": "user", "content": str(i)}]) for i in range(6)]
    got: dict[str, str] = {}
    with fault_server(["500", "429", "401"]) as server:
        async def go():
            async with Endpoint(settings(server.base_url, concurrency=1)) as endpoint:
                return await run_jobs(endpoint, jobs, lambda job, reply: got.__setitem__(job.key, reply.text))
        summary = asyncio.run(go())
    assert summary.answered == 5 and len(summary.failed) == 1
    assert set(got) | set(summary.failed) == {job.key for job in jobs}
    assert all(text == f"echo: {key[1:]}" for key, text in got.items())


def test_token_budget_stops_sending_and_keeps_what_arrived() -> None:
    jobs = [Job(f"k{i}", [{"role": "user", "content": "x" * 5}]) for i in range(10)]
    got: list[str] = []
    with fault_server() as server:  # each answer costs 10 prompt + 11 completion tokens ('echo: xxxxx')
        async def go():
            config = settings(server.base_url, concurrency=1, max_tokens_total=50, price=Price(1.0, 2.0))
            async with Endpoint(config) as endpoint:
                return await run_jobs(endpoint, jobs, lambda job, reply: got.append(job.key)), endpoint
        summary, endpoint = asyncio.run(go())
    assert summary.answered == 3 and summary.unsent == 7 and len(got) == 3
    assert "token budget" in (summary.budget or "")
    assert endpoint.usage.tokens == 63  # the third request crossed the budget of 50; the fourth was not sent
    assert endpoint.usage.cost(Price(1.0, 2.0)) == pytest.approx((30 * 1 + 33 * 2) / 1e6)


def test_cost_budget_raises_before_sending() -> None:
    async def go() -> None:
        async with Endpoint(settings("http://127.0.0.1:9/v1", max_cost=0.0)) as endpoint:
            await endpoint.chat([{"role": "user", "content": "x"}])
    with pytest.raises(BudgetReached, match="cost budget"):
        asyncio.run(go())


def test_bucket_waits_for_refill() -> None:
    now = [0.0]
    bucket = Bucket(60, clock=lambda: now[0])  # one unit a second, 60 at most
    bucket.take(60)
    assert bucket.wait_for(1) == pytest.approx(1.0)
    now[0] = 30.0
    assert bucket.wait_for(1) == 0.0
    assert bucket.wait_for(45) == pytest.approx(15.0)


def test_requests_per_minute_spaces_requests() -> None:
    with fault_server() as server:
        async def go() -> float:
            async with Endpoint(settings(server.base_url, requests_per_minute=600)) as endpoint:
                started = time.monotonic()
                endpoint.limiter.requests.level, endpoint.limiter.requests.stamp = 0.0, started  # empty: 0.1 s each
                await asyncio.gather(*(endpoint.chat([{"role": "user", "content": "x"}]) for _ in range(3)))
                return time.monotonic() - started
        assert asyncio.run(go()) >= 0.29
