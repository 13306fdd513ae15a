"""Generation with transformers: the model's own chat template, base or base + adapters."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tunelab.config.schema import InferSection
from tunelab.model.load import ModelBundle


def generation_kwargs(settings: InferSection, tokenizer: Any) -> dict[str, Any]:
    """Arguments for model.generate from the infer section."""
    kwargs: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens, "do_sample": settings.do_sample,
                              "repetition_penalty": settings.repetition_penalty,
                              "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    if settings.do_sample:
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    return kwargs


class HFEngine:
    """Answers chat messages with a loaded ModelBundle."""

    def __init__(self, bundle: ModelBundle, settings: InferSection, seed: int | None = None) -> None:
        self.bundle = bundle
        self.settings = settings
        self.seed = seed
        bundle.model.eval()

    @property
    def has_adapter(self) -> bool:
        """True when adapters are loaded on the model."""
        return hasattr(self.bundle.model, "disable_adapter")

    def without_adapter(self) -> contextlib.AbstractContextManager:
        """A context in which the model answers as the base model."""
        return self.bundle.model.disable_adapter() if self.has_adapter else contextlib.nullcontext()

    def chat(self, messages: list[dict[str, str]]) -> str:
        """One complete answer to the conversation."""
        import torch

        tokenizer = self.bundle.tokenizer
        inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
        if self.seed is not None:
            torch.manual_seed(self.seed)
        with torch.inference_mode():
            output = self.bundle.model.generate(**inputs, **generation_kwargs(self.settings, tokenizer))
        return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """The answer as text pieces while it is generated; closing the iterator early (Ctrl-C in the
        consumer) stops generation at the next token."""
        import threading

        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        tokenizer = self.bundle.tokenizer
        inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()

        class Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return stop.is_set()

        if self.seed is not None:
            torch.manual_seed(self.seed)

        def work() -> None:
            with torch.inference_mode():
                self.bundle.model.generate(**inputs, streamer=streamer, stopping_criteria=StoppingCriteriaList([Stop()]),
                                           **generation_kwargs(self.settings, tokenizer))

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        try:
            yield from streamer
        finally:
            stop.set()
            thread.join()
