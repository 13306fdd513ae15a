"""One answer in the engine: a Job turns its row's tokens into text events (incremental decoding, stop strings),
knows when it was queued, when its first token came and when its time is up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tunelab.infer.detokenize import Detokenizer, incremental_decoder
from tunelab.infer.protocols import Tokenizer
from tunelab.infer.rows import GenRequest, GenResult
from tunelab.infer.stop_text import StopText


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
    """The answer failed: generation failed (500), its request timed out (504), or it could not run (400)."""

    choice: int
    message: str
    status: int = 500
    code: str = "generation_failed"


Event = TextEvent | DoneEvent | ErrorEvent
Emit = Callable[[Event], None]


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
    queued_at: float = 0.0  # time.monotonic() when submitted
    first_token_at: float | None = None
    deadline: float | None = None  # time.monotonic() after which the answer is cut off (--request-timeout)
    timed_out: bool = False

    def expired(self, now: float) -> bool:
        """True once the request's time is up (and remembers it)."""
        if self.deadline is not None and now >= self.deadline:
            self.timed_out = True
        return self.timed_out

    def on_token(self, token_id: int) -> bool:
        """Take one generated token; False ends this row (client gone, time up, or a stop string reached)."""
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        if self.cancelled.is_set() or self.expired(time.monotonic()):
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
        if self.timed_out:
            self.time_up()
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

    def time_up(self) -> None:
        """Tell the waiting request that its time ran out."""
        self.timed_out = True
        self.emit(ErrorEvent(self.choice, "the request took longer than the server's --request-timeout and was "
                                          "stopped; retry later, or ask for fewer tokens", 504, "timeout"))

    def fail(self, message: str, status: int = 500, code: str = "generation_failed") -> None:
        """Tell the waiting request that generation failed."""
        self.emit(ErrorEvent(self.choice, message, status, code))


def new_job(tokenizer: Tokenizer, request: GenRequest, choice: int, emit: Emit, stops: list[str]) -> Job:
    """A job for one answer, with its own incremental decoder and stop strings."""
    return Job(request=request, choice=choice, emit=emit, decoder=incremental_decoder(tokenizer),
               stop_text=StopText(stops), stop_ids=request.stop_token_ids)
