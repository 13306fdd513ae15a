"""Continuous batching: rows that join a running batch, slots given to the next request at once, per-row adapters;
every greedy row gives the tokens it gives alone."""

from __future__ import annotations

import queue
from typing import Any

import pytest
import torch

from tunelab.infer.batch_generate import GenRequest, generate, generate_each
from tunelab.infer.engine import DoneEvent, Engine, ErrorEvent, Event, QueueFull, TextEvent, new_job
from tunelab.infer.partial_char import whole_text
from tunelab.infer.rows import new_row
from tunelab.infer.running import RunningBatch

TEXTS = ["Hello there, how are you?", "What is the capital of France? Paris is the capital",
         "cat", "Write a poem about the sea. Summarize the text. Give a title. Answer in one word.",
         "Who are you?", "Translate to French: the cat sleeps"]
PAD = 0


@pytest.fixture
def prompts(tiny_tokenizer: Any) -> list[list[int]]:
    """Prompts of different lengths."""
    return [tiny_tokenizer(text, add_special_tokens=False)["input_ids"] for text in TEXTS]


def alone(model: Any, request: GenRequest) -> list[int]:
    """The request's tokens served alone."""
    return generate(model, [request], PAD)[0].token_ids


def test_rows_joining_a_running_batch_get_their_tokens_alone(tiny_llama: Any, prompts: list[list[int]]) -> None:
    """A short prompt joins a long one after 3 steps and a long one joins after 5: the caches of different widths
    are left-padded and merged, and every row still gives its tokens alone."""
    requests = [GenRequest(p, 10, repetition_penalty=1.3 if i == 2 else 1.0) for i, p in enumerate(prompts[:4])]
    batch = RunningBatch(tiny_llama, PAD)
    results: dict[int, list[int]] = {}
    with torch.inference_mode():
        batch.admit([new_row(0, requests[0])])
        for step in range(30):
            if step == 3:
                batch.admit([new_row(1, requests[1]), new_row(2, requests[2])])
            if step == 5:
                batch.admit([new_row(3, requests[3])])
            if step == 4:
                assert len(batch) == 3 and batch.mask is not None and batch.mask.shape[0] == 3
            results.update((key, result.token_ids) for key, result in batch.step(None))
            if not len(batch) and step > 5:
                break
    assert results == {i: alone(tiny_llama, r) for i, r in enumerate(requests)}


def test_a_finished_row_is_replaced_at_once(tiny_llama: Any, prompts: list[list[int]]) -> None:
    lengths = [2, 9, 3, 6, 4, 5]
    requests = [GenRequest(p, n) for p, n in zip(prompts, lengths)]
    sizes: list[int] = []
    handle = tiny_llama.register_forward_pre_hook(lambda m, a, k: sizes.append(k["input_ids"].shape[0]),
                                                  with_kwargs=True)
    order = [index for index, _ in generate_each(tiny_llama, requests, PAD, max_batch=2)]
    handle.remove()
    results = generate(tiny_llama, requests, PAD, max_batch=2)
    assert [r.token_ids for r in results] == [alone(tiny_llama, r) for r in requests]
    assert order[0] == 0 and sorted(order) == list(range(6))
    # never more than 2 rows decode together, and they keep 2 rows busy while requests wait
    assert max(sizes) == 2 and sum(lengths) <= 2 * len(sizes)


def test_rows_of_different_adapters_share_a_batch(make_tiny_llama: Any, prompts: list[list[int]]) -> None:
    """Two tiny LoRA adapters, the base and the model as loaded in one batch: each row equals that adapter alone."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    model = get_peft_model(make_tiny_llama(), config, adapter_name="first")
    torch.manual_seed(2)
    model.add_adapter("second", config)
    model.set_adapter("first")
    model.eval()
    adapters = ["first", "second", "", None, "second", "first"]
    requests = [GenRequest(p, 8, adapter=name) for p, name in zip(prompts, adapters)]
    mixed = generate(model, requests, PAD)
    expected = []
    for request, name in zip(requests, adapters):
        plain = GenRequest(request.input_ids, 8)
        if name == "":
            with model.disable_adapter():
                expected.append(alone(model, plain))
        else:
            model.set_adapter(name or "first")
            expected.append(alone(model, plain))
    model.set_adapter("first")
    assert [r.token_ids for r in mixed] == expected
    assert expected[0] != expected[1] != expected[2]  # the adapters do differ
    with pytest.raises(ValueError, match="adapter 'c' is not loaded; the loaded adapters are first, second"):
        generate(model, [GenRequest(prompts[0], 2, adapter="c")], PAD)


def test_the_engine_admits_a_request_while_another_decodes(tiny_llama: Any, tiny_tokenizer: Any,
                                                           prompts: list[list[int]]) -> None:
    engine = Engine(tiny_llama, PAD, max_batch=4, name="test")
    events: queue.Queue[Event] = queue.Queue()
    late = new_job(tiny_tokenizer, GenRequest(prompts[1], 12), 1, events.put, [])
    seen: list[int] = []

    def first(event: Event) -> None:
        # the second request arrives after the first one's second piece of text: mid-decode
        if isinstance(event, TextEvent) and len(seen) == 1:
            engine.submit([late])
        seen.append(0)
        events.put(event)

    engine.start()
    engine.submit([new_job(tiny_tokenizer, GenRequest(prompts[0], 20), 0, first, [])])
    done: dict[int, DoneEvent] = {}
    texts = {0: "", 1: ""}
    while len(done) < 2:
        event = events.get(timeout=30)
        if isinstance(event, TextEvent):
            texts[event.choice] += event.text
        elif isinstance(event, DoneEvent):
            done[event.choice] = event
    engine.stop()
    for choice, prompt, n in ((0, prompts[0], 20), (1, prompts[1], 12)):
        assert texts[choice] == whole_text(tiny_tokenizer, alone(tiny_llama, GenRequest(prompt, n)))
    assert engine.largest_batch == 2 and engine.batches == 2 and engine.active() == 0
    assert engine.stats.generated_tokens == 32 and engine.stats.ttft.count == 2


def test_a_full_queue_refuses_and_a_late_request_times_out(tiny_llama: Any, tiny_tokenizer: Any,
                                                           prompts: list[list[int]]) -> None:
    engine = Engine(tiny_llama, PAD, max_batch=1, name="test", max_queue=2, request_timeout=0.0)
    events: queue.Queue[Event] = queue.Queue()
    jobs = [new_job(tiny_tokenizer, GenRequest(prompts[0], 5), i, events.put, []) for i in range(3)]
    engine.submit(jobs[:2])  # not started: both wait
    with pytest.raises(QueueFull) as refused:
        engine.submit(jobs[2:])
    assert refused.value.waiting == 2 and 1 <= refused.value.retry_after <= 60
    engine.start()
    failed = [events.get(timeout=10) for _ in range(2)]
    engine.stop()
    assert all(isinstance(e, ErrorEvent) and e.status == 504 and e.code == "timeout" for e in failed)
    assert engine.stats.finished == {"timeout": 2} and engine.waiting() == 0


def test_predict_answers_come_in_row_order_whatever_the_slots(tiny_tokenizer: Any, tiny_llama: Any,
                                                              prompts: list[list[int]]) -> None:
    """`tunelab predict`'s rows through 2 slots: the same answers, in the same order, as all rows at once."""
    from tunelab.config.schema import InferSection
    from tunelab.infer.predict import PromptRow, answers, generate_batch
    from tunelab.model.load import ModelBundle

    rows = [PromptRow(id=str(i), dataset="d", messages=[], prompt="", label="", input_ids=ids)
            for i, ids in enumerate(prompts)]
    bundle = ModelBundle(tokenizer=tiny_tokenizer, model=tiny_llama, source=None)  # type: ignore[arg-type]
    settings = InferSection(do_sample=False, max_new_tokens=6)
    slotted = [(row.id, text, count) for row, text, count in answers(bundle, rows, settings, 2)]
    together = generate_batch(bundle, rows, settings)
    assert slotted == [(row.id, text, count) for row, (text, count) in zip(rows, together)]


def test_stopping_tells_waiting_jobs_and_ends_running_rows(tiny_llama: Any, tiny_tokenizer: Any,
                                                           prompts: list[list[int]]) -> None:
    engine = Engine(tiny_llama, PAD, max_batch=1, name="test")
    events: queue.Queue[Event] = queue.Queue()
    running = new_job(tiny_tokenizer, GenRequest(prompts[0], 10_000), 0, events.put, [])
    waiting = new_job(tiny_tokenizer, GenRequest(prompts[1], 5), 1, events.put, [])
    engine.start()
    engine.submit([running, waiting])
    assert isinstance(events.get(timeout=10), TextEvent)
    engine.stop()
    assert engine.thread is None and running.cancelled.is_set() and engine.active() == 0
    rest = [events.get_nowait() for _ in range(events.qsize())]
    errors = [e for e in rest if isinstance(e, ErrorEvent)]
    assert [(e.choice, e.status, e.code) for e in errors] == [(1, 503, "shutting_down")]
    assert not any(isinstance(e, DoneEvent) for e in rest)  # the cancelled row ends without an answer


def test_a_job_that_cannot_run_fails_alone(tiny_llama: Any, tiny_tokenizer: Any, prompts: list[list[int]]) -> None:
    engine = Engine(tiny_llama, PAD, max_batch=4, name="test")
    events: queue.Queue[Event] = queue.Queue()
    engine.start()
    engine.submit([new_job(tiny_tokenizer, GenRequest(prompts[0], 3, adapter="legal"), 0, events.put, []),
                   new_job(tiny_tokenizer, GenRequest(prompts[1], 3), 1, events.put, [])])
    ended = {}
    while len(ended) < 2:
        event = events.get(timeout=30)
        if isinstance(event, (DoneEvent, ErrorEvent)):
            ended[event.choice] = event
    engine.stop()
    assert ended[0] == ErrorEvent(0, "adapter 'legal' is not loaded; the model has no adapters loaded", 400,
                                  "invalid_value")
    assert isinstance(ended[1], DoneEvent) and ended[1].tokens == 3
