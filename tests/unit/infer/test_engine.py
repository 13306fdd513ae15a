"""Jobs of the engine: tokens to text events, stop ids and strings, cancels; the worker thread and its batches."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from tunelab.infer.batch_generate import GenRequest, GenResult
from tunelab.infer import engine as engine_module
from tunelab.infer.engine import DoneEvent, Engine, ErrorEvent, Event, TextEvent, new_job


def test_cancelled_job_stops_its_row(tiny_tokenizer: Any) -> None:
    events: list[Event] = []
    job = new_job(tiny_tokenizer, GenRequest([1], 4, stop_token_ids=frozenset({2})), 0, events.append, ["there"])
    ids = tiny_tokenizer("Hello", add_special_tokens=False)["input_ids"]
    assert all(job.on_token(t) for t in ids)
    assert job.on_token(2) and job.tokens == len(ids)  # a stop id is not text and is not counted
    job.cancelled.set()
    assert job.on_token(ids[0]) is False
    job.finish(GenResult(ids, "cancelled"))
    assert not any(isinstance(e, DoneEvent) for e in events)


def test_stop_string_cancels_the_row_and_finishes_with_stop(tiny_tokenizer: Any) -> None:
    events: list[Event] = []
    job = new_job(tiny_tokenizer, GenRequest([1], 4), 0, events.append, [" there"])
    answers = [job.on_token(t) for t in tiny_tokenizer("Hello there, how", add_special_tokens=False)["input_ids"]]
    assert False in answers
    job.finish(GenResult([], "cancelled"))
    assert "".join(e.text for e in events if isinstance(e, TextEvent)) == "Hello"
    assert events[-1] == DoneEvent(0, "stop", events[-1].tokens)


def test_jobs_that_arrive_together_share_a_batch_and_a_failure_reaches_each(tiny_tokenizer: Any) -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def generate(model: Any, requests: list[GenRequest], pad_id: int, on_token: Any = None) -> list[GenResult]:
        gate.wait(5)
        sizes.append(len(requests))
        if len(sizes) == 2:
            raise RuntimeError("out of memory")
        return [GenResult([], "stop") for _ in requests]

    engine = Engine(model=None, pad_id=0, max_batch=4, generate_fn=generate, name="test")  # type: ignore[arg-type]
    events: queue.Queue[Event] = queue.Queue()
    engine.start()
    engine.submit([new_job(tiny_tokenizer, GenRequest([1], 2), i, events.put, []) for i in range(3)])
    gate.set()
    done = [events.get(timeout=5) for _ in range(3)]
    assert sizes == [3] and all(isinstance(e, DoneEvent) and e.tokens == 0 for e in done)
    engine.submit([new_job(tiny_tokenizer, GenRequest([1], 2), i, events.put, []) for i in range(2)])
    failed = [events.get(timeout=5) for _ in range(2)]
    assert all(isinstance(e, ErrorEvent) and "RuntimeError: out of memory" in e.message for e in failed)
    engine.stop()
    assert engine.thread is None and engine.largest_batch == 3


def test_freed_memory_goes_back_to_the_os_only_after_the_engine_stays_idle(tiny_tokenizer: Any,
                                                                          monkeypatch: Any) -> None:
    trims: list[float] = []

    def trim() -> bool:  # engines of other tests may still idle in this process: count this engine's worker only
        if threading.current_thread() is engine.thread:
            trims.append(time.monotonic())
        return True

    monkeypatch.setattr(engine_module, "release_free_memory", trim)
    monkeypatch.setattr(engine_module, "TRIM_AFTER_IDLE_SECONDS", 30.0)  # no idle spell that long below

    def generate(model: Any, requests: list[GenRequest], pad_id: int, on_token: Any = None) -> list[GenResult]:
        return [GenResult([], "stop") for _ in requests]

    engine = Engine(model=None, pad_id=0, max_batch=4, generate_fn=generate, name="test")  # type: ignore[arg-type]
    events: queue.Queue[Event] = queue.Queue()
    engine.start()
    for i in range(3):  # requests back to back: the heap stays warm between them
        engine.submit([new_job(tiny_tokenizer, GenRequest([1], 2), i, events.put, [])])
        events.get(timeout=5)
    assert trims == []
    # a short idle time from now on: the waiting worker is woken to wait again with it, then trims once
    monkeypatch.setattr(engine_module, "TRIM_AFTER_IDLE_SECONDS", 0.2)
    with engine.condition:
        engine.condition.notify_all()
    deadline = time.monotonic() + 10
    while not trims and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert len(trims) == 1  # once: nothing was freed since
    engine.stop()
