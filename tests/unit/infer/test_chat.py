"""Chat through the engine: settings map as they did to HF generate, greedy answers equal HF generate's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunelab.config.schema import InferSection
from tunelab.infer.chat import ChatEngine
from tunelab.model.load import ModelBundle, ResolvedModel
from tests.conftest import utf8_answer

MESSAGES = [[{"role": "user", "content": "Hello there"}],
            [{"role": "system", "content": "Answer in one word."},
             {"role": "user", "content": "What is the capital of France?"}]]


def engine_for(model: Any, tokenizer: Any, tmp_path: Path, settings: InferSection, seed: int | None = None
               ) -> ChatEngine:
    return ChatEngine(ModelBundle(tokenizer=tokenizer, model=model, source=ResolvedModel(tmp_path, "tiny", "folder")),
                      settings, seed=seed)


def test_sampling_settings(tiny_llama: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    settings = InferSection(max_new_tokens=5, temperature=0.5, top_p=0.9, top_k=10, repetition_penalty=1.2)
    request = engine_for(tiny_llama, tiny_tokenizer, tmp_path, settings, seed=3).request(MESSAGES[0])
    assert (request.max_new_tokens, request.do_sample, request.repetition_penalty) == (5, True, 1.2)
    assert (request.temperature, request.top_p, request.top_k, request.seed) == (0.5, 0.9, 10, 3)
    assert request.stop_token_ids == {tiny_tokenizer.eos_token_id}  # the tokenizer's eos, as generate was given


def test_greedy_settings_clear_the_sampling_knobs(tiny_llama: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    request = engine_for(tiny_llama, tiny_tokenizer, tmp_path, InferSection(do_sample=False)).request(MESSAGES[0])
    assert (request.do_sample, request.temperature, request.top_p, request.top_k) == (False, 1.0, 1.0, 0)


def test_chat_answers_with_the_new_tokens_only(tiny_llama: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    engine = engine_for(tiny_llama, tiny_tokenizer, tmp_path, InferSection(do_sample=False, max_new_tokens=4))
    messages = [{"role": "user", "content": "Hello there"}]
    answer = engine.chat(messages)
    assert answer == engine.chat(messages)  # greedy: the same answer twice
    assert "Hello there" not in answer and "<|im_start|>" not in answer
    assert not engine.has_adapter


def hf_generate(model: Any, tokenizer: Any, messages: list[dict[str, str]], settings: InferSection) -> str:
    """The answer of HF generate with the infer section's settings, read by Python's UTF-8 decoder (a character
    that max_new_tokens cut in half is left out)."""
    import torch

    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=settings.max_new_tokens, do_sample=False,
                                repetition_penalty=settings.repetition_penalty, temperature=None, top_p=None,
                                top_k=None, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return utf8_answer(tokenizer, output[0, inputs["input_ids"].shape[1]:].tolist()).strip()


@pytest.mark.parametrize("penalty", [1.0, 1.3])
@pytest.mark.parametrize("messages", MESSAGES)
def test_greedy_answers_equal_hf_generate(tiny_llama: Any, tiny_tokenizer: Any, tmp_path: Path,
                                          messages: list[dict[str, str]], penalty: float) -> None:
    settings = InferSection(do_sample=False, max_new_tokens=24, repetition_penalty=penalty)
    engine = engine_for(tiny_llama, tiny_tokenizer, tmp_path, settings)
    request = engine.request(messages)
    streamed = "".join(engine.stream(messages)).strip()
    assert streamed == hf_generate(tiny_llama, tiny_tokenizer, messages, settings)
    assert engine.chat(messages) == streamed and len(request.input_ids) > 5


def test_greedy_token_ids_equal_hf_generate(tiny_llama: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    import torch

    from tunelab.infer.batch_generate import generate

    settings = InferSection(do_sample=False, max_new_tokens=24)
    request = engine_for(tiny_llama, tiny_tokenizer, tmp_path, settings).request(MESSAGES[1])
    with torch.inference_mode():
        hf = tiny_llama.generate(torch.tensor([request.input_ids]), attention_mask=torch.ones(1, len(request.input_ids),
                                 dtype=torch.long), max_new_tokens=24, do_sample=False,
                                 pad_token_id=tiny_tokenizer.pad_token_id, eos_token_id=tiny_tokenizer.eos_token_id)
    ours = generate(tiny_llama, [request], tiny_tokenizer.pad_token_id)[0]
    expected = hf[0, len(request.input_ids):].tolist()
    assert ours.token_ids + [tiny_tokenizer.eos_token_id] * (ours.finish_reason == "stop") == expected


def test_seeded_sampling_is_reproducible_and_closing_the_stream_cancels(tiny_llama: Any, tiny_tokenizer: Any,
                                                                         tmp_path: Path) -> None:
    settings = InferSection(do_sample=True, temperature=1.5, max_new_tokens=12)
    engine = engine_for(tiny_llama, tiny_tokenizer, tmp_path, settings, seed=7)
    assert engine.chat(MESSAGES[0]) == engine.chat(MESSAGES[0])
    pieces = engine.stream(MESSAGES[0])
    next(pieces, None)
    pieces.close()  # what Ctrl-C in the REPL does: the job is cancelled, the engine serves the next answer
    assert engine.chat(MESSAGES[0]) == engine.chat(MESSAGES[0])
