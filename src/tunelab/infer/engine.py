"""The engine: one worker thread owns the model and decodes every running answer together, step by step.

Jobs are queued one per answer. Between two decode steps the worker admits waiting jobs into free slots (up to
max_batch running rows): their prompts are prefilled and their cache rows merged into the running batch
(`running.py`), so a request that arrives while others decode starts at the next step instead of waiting for them
to end. Each new token is decoded on the worker and the text handed to the job's `emit` (an asyncio queue for the
API, a plain queue for chat). A job that is cancelled (its client left, Ctrl-C), runs out of time or hits a stop
string answers False from on_token, which frees its row at once.

Back-pressure: at most max_queue jobs wait for a slot; `submit` refuses more with QueueFull (the API answers 429
with Retry-After). A job still waiting or running when its request_timeout passes ends with a 504 error event.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from tunelab.infer.jobs import DoneEvent, Emit, ErrorEvent, Event, Job, TextEvent, new_job
from tunelab.infer.protocols import CausalLM
from tunelab.infer.rows import GenRequest, GenResult, OnToken, Row, new_row, request_problems
from tunelab.infer.running import RunningBatch, adapter_problem
from tunelab.infer.stats import EngineStats
from tunelab.runtime.logging import warn
from tunelab.runtime.memory import release_free_memory

__all__ = ["DoneEvent", "Emit", "Engine", "ErrorEvent", "Event", "GenerateFn", "Job", "QueueFull", "TextEvent",
           "new_job"]

# How long an idle worker waits for more requests after the first one: clients that start together prefill together.
GATHER_SECONDS = 0.01
# How long the engine must stay idle before its freed memory goes back to the OS: a client that sends its next
# request right after an answer finds the heap still warm (trimming and faulting pages in again cost it latency).
TRIM_AFTER_IDLE_SECONDS = 1.0


class QueueFull(Exception):
    """No room to wait: max_queue jobs are waiting already; retry_after is a guess of when there will be."""

    def __init__(self, waiting: int, retry_after: int) -> None:
        super().__init__(f"{waiting} requests are waiting already")
        self.waiting = waiting
        self.retry_after = retry_after


class GenerateFn(Protocol):
    """batch_generate.generate's signature (tests pass scripted stand-ins, run as whole batches)."""

    def __call__(self, model: CausalLM, requests: list[GenRequest], pad_id: int,
                 on_token: OnToken | None = None) -> list[GenResult]:
        """Continue every request in one batch."""
        ...


class Stepper(Protocol):
    """What the worker drives: RunningBatch, or WholeBatches over a scripted generate function."""

    rows: list[Row]

    def __len__(self) -> int: ...

    def accepts(self, request: GenRequest, joining: Sequence[GenRequest] = ()) -> bool:
        """Whether a row for this request can join now, with the others joining at once."""
        ...

    def admit(self, rows: list[Row]) -> None:
        """Add rows (prefilled by the time the next step runs)."""
        ...

    def step(self, on_token: OnToken | None) -> list[tuple[int, GenResult]]:
        """One token for every row; (key, result) of the rows that finished."""
        ...

    def clear(self) -> None:
        """Forget every row."""
        ...


class WholeBatches:
    """A generate function run over fixed batches: rows join only an empty batch, and one step runs them to the
    end (how tests script generation without a model)."""

    def __init__(self, generate_fn: GenerateFn, model: CausalLM, pad_id: int) -> None:
        self.generate_fn, self.model, self.pad_id = generate_fn, model, pad_id
        self.rows: list[Row] = []

    def __len__(self) -> int:
        return len(self.rows)

    def accepts(self, request: GenRequest, joining: Sequence[GenRequest] = ()) -> bool:
        """Only into an empty batch."""
        return not self.rows

    def admit(self, rows: list[Row]) -> None:
        """Take the rows of the next batch."""
        self.rows += rows

    def step(self, on_token: OnToken | None) -> list[tuple[int, GenResult]]:
        """The whole batch in one call."""
        rows, self.rows = self.rows, []
        keys = [row.index for row in rows]
        results = self.generate_fn(self.model, [row.request for row in rows], self.pad_id,
                                   on_token=None if on_token is None else (lambda i, t: on_token(keys[i], t)))
        return list(zip(keys, results))

    def clear(self) -> None:
        """Forget every row."""
        self.rows = []


class Engine:
    """The worker thread, its waiting jobs and its running batch; `name` tells whose failures the warnings report."""

    def __init__(self, model: CausalLM, pad_id: int, max_batch: int, generate_fn: GenerateFn | None = None,
                 name: str = "api", max_queue: int | None = None, request_timeout: float | None = None,
                 batch: Stepper | None = None) -> None:
        self.model = model
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.request_timeout = request_timeout
        self.name = name
        # batch: another decoder's running batch (vLLM's), which checks its own adapters
        self.batch: Stepper = (batch if batch is not None else WholeBatches(generate_fn, model, pad_id)
                               if generate_fn is not None else RunningBatch(model, pad_id))
        self.own_batch = batch is None
        self.waiting_jobs: deque[Job] = deque()
        self.running: dict[int, Job] = {}
        self.condition = threading.Condition()
        self.stopping = False
        self.keys = 0
        self.stats = EngineStats()
        self.thread: threading.Thread | None = None
        self.untrimmed = False  # memory was freed since the last trim

    @property
    def batches(self) -> int:
        """Groups of rows admitted so far (prefill calls)."""
        return self.stats.admissions

    @property
    def largest_batch(self) -> int:
        """The most rows that ran together."""
        return self.stats.largest_batch

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self.thread is None:
            self.stopping = False
            self.thread = threading.Thread(target=self.work, name="tunelab-engine", daemon=True)
            self.thread.start()

    def stop(self) -> None:
        """Stop the worker: waiting jobs are told the server is shutting down, running rows end at their next step."""
        if self.thread is not None:
            with self.condition:
                self.stopping = True
                while self.waiting_jobs:
                    job = self.waiting_jobs.popleft()
                    job.fail("the server is shutting down; retry on another server or later", 503, "shutting_down")
                    self.done(job, "error")
                for job in list(self.running.values()):
                    job.cancelled.set()
                self.condition.notify_all()
            self.thread.join(timeout=30)
            self.thread = None

    def submit(self, jobs: list[Job]) -> None:
        """Queue jobs (thread-safe; the choices of one request together); QueueFull when max_queue are waiting."""
        with self.condition:
            if self.stopping and self.thread is not None:
                for job in jobs:
                    job.fail("the server is shutting down; retry on another server or later", 503, "shutting_down")
                return
            waiting = len(self.waiting_jobs)
            if self.max_queue is not None and waiting and waiting + len(jobs) > self.max_queue:
                raise QueueFull(waiting, self.retry_after(waiting))
            now = time.monotonic()
            for job in jobs:
                job.queued_at = now
                job.deadline = None if self.request_timeout is None else now + self.request_timeout
            self.waiting_jobs.extend(jobs)
            self.condition.notify_all()

    def waiting(self) -> int:
        """Jobs queued and not yet running."""
        return len(self.waiting_jobs)

    def active(self) -> int:
        """Rows running now."""
        return len(self.running)

    def retry_after(self, waiting: int) -> int:
        """Seconds until a slot is likely free: the recent answer latency for each full batch waiting ahead."""
        latency = self.stats.recent_latency or 1.0
        return max(1, min(60, math.ceil(latency * math.ceil((waiting + 1) / max(self.max_batch, 1)))))

    def work(self) -> None:
        """The worker loop: admit waiting jobs into free slots, run one step, until stopped and drained."""
        while (joining := self.take()) is not None:
            if joining:
                self.admit(joining)
            if len(self.batch):
                self.step()
                self.untrimmed = self.untrimmed or not len(self.batch)

    def take(self) -> list[Job] | None:
        """The waiting jobs that join now; blocks while nothing runs; None when the engine is stopping and idle."""
        with self.condition:
            if not len(self.batch):
                while not self.waiting_jobs and not self.stopping:
                    self.idle_wait()
                if not self.waiting_jobs:
                    return None
                # clients that start together prefill together: wait a moment for more
                until = time.monotonic() + GATHER_SECONDS
                while len(self.waiting_jobs) < self.max_batch and (left := until - time.monotonic()) > 0:
                    self.condition.wait(left)
            return self.pop_admissible()

    def idle_wait(self) -> None:
        """Wait for jobs with nothing running; after TRIM_AFTER_IDLE_SECONDS of that, give freed memory back to the
        OS (the last batch's cache), so an idle server is not kept at its peak size."""
        if not self.untrimmed:
            self.condition.wait()
        elif not self.condition.wait(TRIM_AFTER_IDLE_SECONDS):
            release_free_memory()
            self.untrimmed = False

    def pop_admissible(self) -> list[Job]:
        """Waiting jobs for the free slots, in order (cancelled and timed-out ones leave the queue here)."""
        joining: list[Job] = []
        now = time.monotonic()
        while self.waiting_jobs and len(self.batch) + len(joining) < self.max_batch:
            job = self.waiting_jobs[0]
            if job.cancelled.is_set() or job.expired(now):
                self.waiting_jobs.popleft()
                self.done(job, "cancelled" if job.cancelled.is_set() else "timeout")
                if job.timed_out:
                    job.time_up()
                continue
            if not self.batch.accepts(job.request, [j.request for j in joining]):
                break
            joining.append(self.waiting_jobs.popleft())
        return joining

    def admit(self, jobs: list[Job]) -> None:
        """Prefill the joining jobs' rows into the running batch; a job that cannot run fails alone."""
        rows = []
        for job in jobs:
            self.keys += 1
            adapter = adapter_problem(self.model, job.request.adapter) if self.own_batch else None
            problems = [*request_problems(job.request), *filter(None, [adapter])]
            if problems:
                job.fail("; ".join(problems), 400, "invalid_value")
                self.done(job, "error")
                continue
            if job.request.max_new_tokens == 0:
                job.finish(GenResult([], "length"))
                self.done(job, "length")
                continue
            self.running[self.keys] = job
            rows.append(new_row(self.keys, job.request))
        try:
            self.batch.admit(rows)
        except Exception as exc:  # noqa: BLE001 - the engine must survive a failed prefill and say why
            self.fail([self.running.pop(row.index) for row in rows], exc)
            return
        self.stats.admitted(len(rows), sum(len(row.request.input_ids) for row in rows), len(self.batch))

    def step(self) -> None:
        """One token for every running row; finished rows answer; a failure is reported to every running job."""
        import torch

        try:
            with torch.inference_mode():
                done = self.batch.step(lambda key, token: self.running[key].on_token(token))
        except Exception as exc:  # noqa: BLE001 - the engine must survive a failed batch and say why
            self.batch.clear()
            jobs, self.running = list(self.running.values()), {}
            self.fail(jobs, exc)
            return
        self.stats.steps += 1
        for key, result in done:
            job = self.running.pop(key)
            job.finish(result)
            outcome = ("timeout" if job.timed_out else "cancelled" if job.cancelled.is_set()
                       else "stop" if result.finish_reason != "length" else "length")
            self.done(job, outcome)

    def fail(self, jobs: list[Job], exc: Exception) -> None:
        """Report a failed prefill or step to its jobs."""
        warn(f"tunelab {self.name}: generation failed: {exc}\n{traceback.format_exc()}")
        for job in jobs:
            job.fail(f"generation failed: {type(exc).__name__}: {exc}")
            self.done(job, "error")

    def done(self, job: Job, outcome: str) -> None:
        """Count a finished job."""
        now = time.monotonic()
        ttft = None if job.first_token_at is None else job.first_token_at - job.queued_at
        self.stats.answered(outcome, job.tokens, ttft, now - job.queued_at)
