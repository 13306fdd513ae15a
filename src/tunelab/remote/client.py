"""Endpoint: sends chat requests to one OpenAI-compatible server, within its limits, retrying what is worth it."""

from __future__ import annotations

import asyncio
import json

from tunelab.remote.endpoint import (RETRY_STATUS, EndpointSettings, Message, Reply, Retry, Usage, api_key, delay,
                                     estimate_tokens, retry_after)
from tunelab.remote.errors import BudgetReached, RemoteError
from tunelab.remote.limits import RateLimiter

STATUS_FIXES = {
    401: "check the API key in the environment variable the config names",
    403: "the key may not use this model",
    404: "check the base URL (it usually ends in /v1) and the model name",
}



def being_cancelled() -> bool:
    """True when the running task has been asked to stop (asyncio.run cancels it on Ctrl-C)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

class Endpoint:
    """An async client for one endpoint; use as `async with Endpoint(settings) as endpoint:`."""

    def __init__(self, settings: EndpointSettings) -> None:
        from openai import AsyncOpenAI

        self.settings = settings
        self.usage = Usage()
        self.limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute)
        self.gate = asyncio.Semaphore(settings.concurrency)
        # retries are ours (counted, also on malformed replies); the client itself never retries
        self.client = AsyncOpenAI(base_url=settings.base_url, api_key=api_key(settings), max_retries=0,
                                  timeout=settings.timeout)

    async def __aenter__(self) -> Endpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    def check_budget(self) -> None:
        """BudgetReached once the token or cost budget is spent."""
        s = self.settings
        if s.max_tokens_total is not None and self.usage.tokens >= s.max_tokens_total:
            raise BudgetReached(f"{s.where}: the token budget ({s.max_tokens_total:,}) is spent "
                                f"({self.usage.tokens:,} used); raise max_tokens_total to go on")
        if s.max_cost is not None and self.usage.cost(s.price) >= s.max_cost:
            raise BudgetReached(f"{s.where}: the cost budget ({s.max_cost}) is spent "
                                f"({self.usage.cost(s.price):.4f} used); raise max_cost to go on")

    async def chat(self, messages: list[Message], max_tokens: int | None = None, temperature: float | None = None,
                   **params: object) -> Reply:
        """One chat completion, retried on 429/5xx/timeouts/dropped connections/malformed replies."""
        s = self.settings
        async with self.gate:
            for attempt in range(1, s.max_retries + 2):
                self.check_budget()
                estimate = estimate_tokens(messages, max_tokens)
                await self.limiter.acquire(estimate)
                self.usage.requests += 1
                try:
                    reply = await self.once(messages, max_tokens, temperature, params, attempt)
                except Retry as why:
                    self.limiter.settle(estimate, 0)
                    if being_cancelled():  # a cancelled request (Ctrl-C) can surface as a dropped connection
                        raise asyncio.CancelledError from None
                    if attempt > s.max_retries:
                        self.usage.failures += 1
                        raise RemoteError(f"{s.where}: {s.base_url} failed {attempt} times; last: {why}") from None
                    self.usage.retries += 1
                    await asyncio.sleep(delay(s, attempt, why.retry_after))
                    continue
                self.limiter.settle(estimate, reply.prompt_tokens + reply.completion_tokens)
                return reply
        raise AssertionError("unreachable: the loop returns or raises")

    async def once(self, messages: list[Message], max_tokens: int | None, temperature: float | None,
                   params: dict[str, object], attempt: int) -> Reply:
        """One attempt; Retry for what is worth asking again, RemoteError for what is not."""
        import openai
        from pydantic import ValidationError

        options: dict[str, object] = dict(params)
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
        if temperature is not None:
            options["temperature"] = temperature
        try:
            response = await self.client.chat.completions.create(model=self.settings.model, messages=messages,
                                                                 **options)
        except openai.APIStatusError as exc:
            raise self.status_error(exc) from None
        except openai.APITimeoutError:
            raise Retry(f"no answer within {self.settings.timeout:g} s") from None
        except openai.APIConnectionError as exc:
            raise Retry(f"connection failed ({exc.__cause__ or exc})") from None
        except (openai.APIResponseValidationError, json.JSONDecodeError, ValidationError) as exc:
            raise Retry(f"malformed reply ({type(exc).__name__})") from None
        return self.read(response, attempt)

    def status_error(self, exc: Exception) -> Exception:
        """Retry for 408/409/429/5xx; a RemoteError naming the status and the fix for the rest."""
        status = getattr(exc, "status_code", 0)
        response = getattr(exc, "response", None)
        if status in RETRY_STATUS or status >= 500:
            return Retry(f"HTTP {status}", retry_after(getattr(response, "headers", None)))
        self.usage.failures += 1
        fix = STATUS_FIXES.get(status, "check the request settings")
        return RemoteError(f"{self.settings.where}: {self.settings.base_url} answered HTTP {status} "
                           f"({str(getattr(exc, 'message', exc))[:300]}); {fix}")

    def read(self, response: object, attempt: int) -> Reply:
        """The reply's text and usage; a reply without a text message is malformed (Retry)."""
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        text = getattr(message, "content", None)
        if not isinstance(text, str):
            raise Retry("malformed reply (no message text)")
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        self.usage.prompt_tokens += prompt
        self.usage.completion_tokens += completion
        return Reply(text, getattr(choices[0], "finish_reason", None), prompt, completion, attempt)
