"""Many requests to one endpoint at once: each result is handed over as it arrives (so a caller appends it to a
file and an interrupted run loses nothing received), and a spent budget stops sending cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tunelab.remote.client import Endpoint
from tunelab.remote.endpoint import Message, Reply
from tunelab.remote.errors import BudgetReached, RemoteError


@dataclass(frozen=True)
class Job:
    """One request: a stable key (what the caller caches or resumes by) and its messages."""

    key: str
    messages: list[Message]
    max_tokens: int | None = None
    temperature: float | None = None


@dataclass
class BatchSummary:
    """How a batch ended: answered, failed for good (with reasons), not sent because the budget was spent."""

    answered: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    unsent: int = 0
    budget: str | None = None  # the budget message when it stopped the batch


ResultHandler = Callable[[Job, Reply], None]
Progress = Callable[[int, int], None]  # finished, total


async def run_jobs(endpoint: Endpoint, jobs: Sequence[Job], on_reply: ResultHandler,
                   progress: Progress | None = None) -> BatchSummary:
    """Send every job (at most the endpoint's concurrency at a time); on_reply is called as each answer arrives."""
    summary = BatchSummary()
    finished = 0

    async def one(job: Job) -> None:
        nonlocal finished
        try:
            reply = await endpoint.chat(job.messages, job.max_tokens, job.temperature)
        except BudgetReached as exc:
            summary.unsent += 1
            summary.budget = str(exc)
            return
        except RemoteError as exc:
            summary.failed[job.key] = str(exc)
        else:
            on_reply(job, reply)
            summary.answered += 1
        finished += 1
        if progress is not None:
            progress(finished, len(jobs))

    await asyncio.gather(*(one(job) for job in jobs))
    return summary
