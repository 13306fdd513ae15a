"""The engine: one worker thread owns the model and answers waiting jobs in batched generate() calls.

Jobs are queued one per answer. The worker takes the first waiting job, gathers whatever else arrives within a
few milliseconds (up to max_batch jobs), and runs them in one generate() call; each new token is decoded on the
worker and the text handed to the job's `emit` (an asyncio queue for the API, a plain queue for chat). A job that
is cancelled (its client left, Ctrl-C) or hits a stop string answers False from on_token, which frees its row.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from tunelab.infer.batch_generate import GenRequest, GenResult, OnToken, generate
from tunelab.infer.detokenize import Detokenizer, incremental_decoder
from tunelab.infer.protocols import CausalLM, Tokenizer
from tunelab.infer.stop_text import StopText
from tunelab.runtime.logging import warn

# How long the worker waits for more requests after the first one: clients that start together share a batch.
GATHER_SECONDS = 0.01


@dataclass(frozen=True)
class TextEvent:
    """New text of one answer, safe to show (no stop string can cut it any more)."""

    choice: int
    text: str


@dataclass(frozen=True)
class DoneEvent:
    """An answer ended: 'stop' (stop token or string) or 'length', with its generated token count."""

    choice: int
    finish_reason: str
    tokens: int


@dataclass(frozen=True)
class ErrorEvent:
    """Generation failed for the batch this answer was in."""

    choice: int
    message: str


Event = TextEvent | DoneEvent | ErrorEvent
Emit = Callable[[Event], None]


class GenerateFn(Protocol):
    """batch_generate.generate's signature (tests pass scripted stand-ins)."""

    def __call__(self, model: CausalLM, requests: list[GenRequest], pad_id: int,
                 on_token: OnToken | None = None) -> list[GenResult]:
        """Continue every request in one batch."""
        ...


@dataclass
class Job:
    """One answer: what to generate, how to turn tokens into text, where to send it."""

    request: GenRequest
    choice: int
    emit: Emit
    decoder: Detokenizer
    stop_text: StopText
    stop_ids: frozenset[int]
    cancelled: threading.Event = field(default_factory=threading.Event)
    tokens: int = 0

    def on_token(self, token_id: int) -> bool:
        """Take one generated token; False ends this row (client gone, or a stop string reached)."""
        if self.cancelled.is_set():
            return False
        if token_id in self.stop_ids:
            return True
        self.tokens += 1
        text = self.stop_text.feed(self.decoder.push(token_id))
        if text:
            self.emit(TextEvent(self.choice, text))
        return not self.stop_text.stopped

    def finish(self, result: GenResult) -> None:
        """Send the held-back text and the finish event ('stop' | 'length') with the completion token count."""
        if self.cancelled.is_set():
            return
        text = ""
        if not self.stop_text.stopped:
            # tolerate a generate() that reported fewer tokens through on_token than it returns
            for token_id in list(result.token_ids)[self.tokens:]:
                if not self.on_token(token_id):
                    break
        if not self.stop_text.stopped:
            text = self.stop_text.feed(self.decoder.flush())
        if not self.stop_text.stopped:
            text += self.stop_text.finish()  # nothing can follow: release what a stop string might have cut
        if text:
            self.emit(TextEvent(self.choice, text))
        reason = "stop" if self.stop_text.stopped or result.finish_reason != "length" else "length"
        self.emit(DoneEvent(self.choice, reason, self.tokens))

    def fail(self, message: str) -> None:
        """Tell the waiting request that generation failed."""
        self.emit(ErrorEvent(self.choice, message))


def new_job(tokenizer: Tokenizer, request: GenRequest, choice: int, emit: Emit, stops: list[str]) -> Job:
    """A job for one answer, with its own incremental decoder and stop strings."""
    return Job(request=request, choice=choice, emit=emit, decoder=incremental_decoder(tokenizer),
               stop_text=StopText(stops), stop_ids=request.stop_token_ids)


class Engine:
    """The worker thread and its queue of jobs; `name` tells whose failures the warnings report."""

    def __init__(self, model: CausalLM, pad_id: int, max_batch: int, generate_fn: GenerateFn | None = None,
                 name: str = "api") -> None:
        self.model = model
        self.pad_id = pad_id
        self.max_batch = max_batch
        self.generate_fn: GenerateFn = generate_fn or generate
        self.name = name
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.batches = 0
        self.largest_batch = 0

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self.thread is None:
            self.thread = threading.Thread(target=self.work, name="tunelab-engine", daemon=True)
            self.thread.start()

    def stop(self) -> None:
        """Let the worker finish its batch and exit."""
        if self.thread is not None:
            self.jobs.put(None)
            self.thread.join(timeout=30)
            self.thread = None

    def submit(self, jobs: list[Job]) -> None:
        """Queue jobs (thread-safe); the choices of one request are queued together."""
        for job in jobs:
            self.jobs.put(job)

    def waiting(self) -> int:
        """Jobs queued and not yet in a batch."""
        return self.jobs.qsize()

    def take_batch(self) -> list[Job] | None:
        """Block for a job, then gather more for a moment; None when the engine is stopping."""
        first = self.jobs.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + GATHER_SECONDS
        while len(batch) < self.max_batch:
            try:
                job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                self.jobs.put(None)  # stop after this batch
                break
            batch.append(job)
        return [job for job in batch if not job.cancelled.is_set()]

    def work(self) -> None:
        """The worker loop: one generate() call per batch until stopped."""
        while (batch := self.take_batch()) is not None:
            if batch:
                self.run_batch(batch)

    def run_batch(self, batch: list[Job]) -> None:
        """Generate for a batch, streaming tokens to each job; a failure is reported to every job in it."""
        import torch

        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        try:
            with torch.inference_mode():
                results = self.generate_fn(self.model, [job.request for job in batch], self.pad_id,
                                           on_token=lambda row, token_id: batch[row].on_token(token_id))
        except Exception as exc:  # noqa: BLE001 - the engine must survive a failed batch and say why
            warn(f"tunelab {self.name}: generation failed: {exc}\n{traceback.format_exc()}")
            for job in batch:
                job.fail(f"generation failed: {type(exc).__name__}: {exc}")
            return
        for job, result in zip(batch, results):
            job.finish(result)
