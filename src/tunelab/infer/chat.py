"""Chat answers from a loaded model through the engine: the model's own chat template, base or base + adapters.

`tunelab chat` (one-shot prompts, --compare and the REPL) decodes here, through the same engine, decoding loop,
stop handling and incremental decoder as the API. The infer section maps to the request as HF `generate` took
it before: max_new_tokens, do_sample, repetition_penalty, temperature/top_p/top_k only when sampling, and the
tokenizer's eos as the one stop token.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator

from tunelab.config.schema import InferSection
from tunelab.data.render import generation_prompt
from tunelab.infer.batch_generate import GenRequest, sampling_fields
from tunelab.infer.engine import DoneEvent, Engine, ErrorEvent, Event, TextEvent, new_job
from tunelab.model.load import ModelBundle


class ChatEngine:
    """Answers chat messages with a loaded ModelBundle; settings and seed may change between answers."""

    def __init__(self, bundle: ModelBundle, settings: InferSection, seed: int | None = None) -> None:
        self.bundle = bundle
        self.settings = settings
        self.seed = seed
        tokenizer = bundle.tokenizer
        eos = tokenizer.eos_token_id
        self.stop_ids = frozenset() if eos is None else frozenset({eos})
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
        # one answer at a time: a terminal has one user, so no batch gathering delay
        self.engine = Engine(bundle.model, pad if pad is not None else 0, max_batch=1, name="chat")
        bundle.model.eval()

    @property
    def has_adapter(self) -> bool:
        """True when adapters are loaded on the model."""
        return hasattr(self.bundle.model, "disable_adapter")

    def without_adapter(self) -> contextlib.AbstractContextManager[None]:
        """A context in which the model answers as the base model."""
        return self.bundle.model.disable_adapter() if self.has_adapter else contextlib.nullcontext()

    def request(self, messages: list[dict[str, str]]) -> GenRequest:
        """The generation request for the conversation's next answer under the current settings and seed."""
        _, ids = generation_prompt(self.bundle.tokenizer, messages)
        return GenRequest(input_ids=ids, max_new_tokens=self.settings.max_new_tokens, stop_token_ids=self.stop_ids,
                          seed=self.seed, **sampling_fields(self.settings))

    def chat(self, messages: list[dict[str, str]]) -> str:
        """One complete answer to the conversation."""
        return "".join(self.stream(messages)).strip()

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """The answer as text pieces while it is generated; closing the iterator early (Ctrl-C in the
        consumer) stops generation at the next token."""
        events: queue.Queue[Event] = queue.Queue()
        job = new_job(self.bundle.tokenizer, self.request(messages), 0, events.put, stops=[])
        self.engine.start()
        self.engine.submit([job])
        try:
            while not isinstance(event := events.get(), DoneEvent):
                if isinstance(event, ErrorEvent):
                    raise RuntimeError(f"tunelab chat: {event.message}")
                if isinstance(event, TextEvent):
                    yield event.text
        finally:
            job.cancelled.set()
