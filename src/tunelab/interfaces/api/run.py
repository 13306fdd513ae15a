"""One request's way through the engine: its choices queued as jobs, their events read back on the event loop."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import Request

from tunelab.infer.batch_generate import GenRequest, SamplingFields
from tunelab.infer.engine import DoneEvent, Emit, Engine, ErrorEvent, Event, Job, QueueFull, TextEvent, new_job
from tunelab.infer.protocols import Tokenizer
from tunelab.interfaces.api.errors import APIError
from tunelab.interfaces.api.sampling import choice_seed

# How often a non-streaming request checks whether its client is still there.
DISCONNECT_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Prompt:
    """Token ids to continue and how many new tokens at most."""

    ids: list[int]
    max_new_tokens: int


@dataclass
class Answer:
    """What one choice produced, for non-streaming replies."""

    text: str = ""
    finish_reason: str | None = None
    tokens: int = 0


@dataclass
class Run:
    """The jobs of one request and the queue their events arrive on."""

    jobs: list[Job]
    events: asyncio.Queue[Event]
    created: int = field(default_factory=lambda: int(time.time()))

    def cancel(self) -> None:
        """Free the batch rows of every job (the client left)."""
        for job in self.jobs:
            job.cancelled.set()


def new_id(prefix: str) -> str:
    """An OpenAI-style object id."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def emitter(loop: asyncio.AbstractEventLoop, events: asyncio.Queue[Event]) -> Emit:
    """A thread-safe function putting an event on the request's queue (a no-op once the loop has closed)."""

    def emit(event: Event) -> None:
        try:
            loop.call_soon_threadsafe(events.put_nowait, event)
        except RuntimeError:
            pass  # the server is shutting down: nobody is waiting for this event

    return emit


def start(engine: Engine, tokenizer: Tokenizer, prompts: list[Prompt], n: int, fields: SamplingFields,
          stops: list[str], stop_ids: frozenset[int], seed: int | None, adapter: str | None = None) -> Run:
    """Queue n choices per prompt (choice index = prompt index x n + i), answered by adapter (None: the model as
    loaded; '': the base model; a name: that loaded adapter), and return their Run."""
    events: asyncio.Queue[Event] = asyncio.Queue()
    emit = emitter(asyncio.get_running_loop(), events)
    jobs = []
    for p, prompt in enumerate(prompts):
        for i in range(n):
            request = GenRequest(input_ids=prompt.ids, max_new_tokens=prompt.max_new_tokens,
                                 stop_token_ids=stop_ids, seed=choice_seed(seed, i), adapter=adapter,
                                 **fields)
            jobs.append(new_job(tokenizer, request, p * n + i, emit, stops))
    try:
        engine.submit(jobs)
    except QueueFull as full:
        raise APIError(429, f"the server is busy: {full.waiting} requests are waiting for a slot already (its "
                            f"--max-queue is {engine.max_queue}); retry after {full.retry_after} s",
                       code="rate_limit_exceeded", headers={"Retry-After": str(full.retry_after)}) from None
    return Run(jobs=jobs, events=events)


async def collect(run: Run, request: Request) -> list[Answer]:
    """Wait for every choice to finish; a client that leaves meanwhile cancels the jobs (checked every
    DISCONNECT_POLL_SECONDS, also while tokens keep arriving)."""
    answers = [Answer() for _ in run.jobs]
    pending = len(run.jobs)
    check_at = time.monotonic() + DISCONNECT_POLL_SECONDS
    while pending:
        try:
            event = await asyncio.wait_for(run.events.get(), max(0.0, check_at - time.monotonic()))
            pending -= apply(event, answers)
        except asyncio.TimeoutError:
            pass
        if pending and time.monotonic() >= check_at:
            check_at = time.monotonic() + DISCONNECT_POLL_SECONDS
            if await request.is_disconnected():
                run.cancel()
                raise APIError(499, "the client closed the request") from None
    return answers


def apply(event: Event, answers: list[Answer]) -> int:
    """Record one event in the answers; 1 when it finished a choice."""
    if isinstance(event, ErrorEvent):
        raise APIError(event.status, event.message, code=event.code)
    if isinstance(event, TextEvent):
        answers[event.choice].text += event.text
        return 0
    answers[event.choice].finish_reason, answers[event.choice].tokens = event.finish_reason, event.tokens
    return 1


async def events(run: Run) -> AsyncIterator[Event]:
    """Every event of the run until all choices are done; leaving early (client gone) cancels the jobs."""
    pending = len(run.jobs)
    try:
        while pending:
            event = await run.events.get()
            if isinstance(event, (DoneEvent, ErrorEvent)):
                pending -= 1
            yield event
    finally:
        if pending:
            run.cancel()


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """OpenAI's usage object."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
