"""Generation settings and answers from the tiny model through the chat template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.config.schema import InferSection
from tunelab.infer.hf_engine import HFEngine, generation_kwargs
from tunelab.model.load import ModelBundle, ResolvedModel


def test_sampling_settings(tiny_tokenizer: Any) -> None:
    kwargs = generation_kwargs(InferSection(max_new_tokens=5, temperature=0.5, top_p=0.9, top_k=10), tiny_tokenizer)
    assert kwargs == {"max_new_tokens": 5, "do_sample": True, "repetition_penalty": 1.0,
                      "pad_token_id": tiny_tokenizer.pad_token_id, "eos_token_id": tiny_tokenizer.eos_token_id,
                      "temperature": 0.5, "top_p": 0.9, "top_k": 10}


def test_greedy_settings_clear_the_sampling_knobs(tiny_tokenizer: Any) -> None:
    kwargs = generation_kwargs(InferSection(do_sample=False), tiny_tokenizer)
    assert (kwargs["do_sample"], kwargs["temperature"], kwargs["top_p"], kwargs["top_k"]) == (False, None, None, None)


def test_chat_answers_with_the_new_tokens_only(tiny_llama: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    bundle = ModelBundle(tokenizer=tiny_tokenizer, model=tiny_llama, source=ResolvedModel(tmp_path, "tiny", "folder"))
    engine = HFEngine(bundle, InferSection(do_sample=False, max_new_tokens=4))
    messages = [{"role": "user", "content": "Hello there"}]
    answer = engine.chat(messages)
    assert answer == engine.chat(messages)  # greedy: the same answer twice
    assert "Hello there" not in answer and "<|im_start|>" not in answer
    assert not engine.has_adapter
