"""Chat templates: training encodes the slots the installed chat template renders, with LLaMA-Factory's rules."""

from __future__ import annotations

from typing import Any

import pytest

from tunelab.config.schema import DataSection
from tunelab.data.chat_template import BOS, EOS, TOKEN, composed_jinja, derive, install, load_named, template_names
from tunelab.data.errors import DataError
from tunelab.data.pipeline import tokenize_records
from tunelab.data.report import DataReport, DatasetReport
from tunelab.data.examples import Message, Supervised
from tunelab.data.encode.cutoff import IGNORE_INDEX

SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face."

SINGLE = [{"role": "user", "content": "What is the capital of France?"},
          {"role": "assistant", "content": "Paris is the capital of France."}]
MULTI = [{"role": "system", "content": "Answer in one word."},
         {"role": "user", "content": "Translate to French: cat"},
         {"role": "assistant", "content": "chat"},
         {"role": "user", "content": "And dog?"},
         {"role": "assistant", "content": "chien"},
         {"role": "user", "content": "And bird?"},
         {"role": "assistant", "content": "oiseau"}]
CONVERSATIONS = pytest.mark.parametrize("messages", [SINGLE, MULTI], ids=["single-turn", "multi-turn"])


def record_of(messages: list[dict[str, str]], dataset: str = "demo", row: int = 1) -> Supervised:
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    turns = tuple(Message(m["role"], m["content"]) for m in messages if m["role"] != "system")  # type: ignore[arg-type]
    return Supervised.chat(messages=turns, dataset=dataset, row=row, system=system)


def tokenize(tokenizer: Any, messages: list[dict[str, str]], **values: Any) -> tuple[list[int], list[int]]:
    report = DataReport(datasets=[DatasetReport(name="demo")])
    columns = tokenize_records([record_of(messages)], tokenizer, DataSection(**values), report)
    return columns["input_ids"][0], columns["labels"][0]


def chat_ids(tokenizer: Any, messages: list[dict[str, str]], **kwargs: Any) -> list[int]:
    return tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False, **kwargs)


def element_text(tokenizer: Any, element: str) -> str:
    if element == BOS:
        return tokenizer.bos_token or ""
    if element == EOS:
        return tokenizer.eos_token or ""
    return element[len(TOKEN):] if element.startswith(TOKEN) else element


@pytest.mark.parametrize("name", template_names())
def test_every_template_renders_for_chat_what_training_encodes(tiny_tokenizer: Any, name: str) -> None:
    """No drift: the installed Hugging Face template and the encoder's slots give the same text."""
    from tunelab.data.encode.turns import EncodeOptions, Encoder

    template = install(tiny_tokenizer, name)
    encoder = Encoder(tiny_tokenizer, template, EncodeOptions())
    elements = encoder.element_lists(record_of(MULTI))
    encoded = "".join(element_text(tiny_tokenizer, e) for message in elements for e in message)
    # (efficient_eos templates add their single closing EOS to the token ids, not to either text)
    assert tiny_tokenizer.apply_chat_template(MULTI, tokenize=False) == encoded


def test_there_are_the_llamafactory_templates_the_issue_names() -> None:
    wanted = {"default", "empty", "fewshot", "alpaca", "vicuna", "zephyr", "chatml", "qwen", "qwen3", "qwen3_nothink",
              "llama2", "llama3", "mistral", "gemma", "gemma3", "glm4", "chatglm3", "yi", "deepseek", "deepseek3",
              "smollm", "smollm2", "phi", "phi4", "intern2"}
    assert wanted <= set(template_names())


@CONVERSATIONS
def test_the_models_own_template_gives_apply_chat_template_ids(tiny_tokenizer: Any,
                                                               messages: list[dict[str, str]]) -> None:
    input_ids, _ = tokenize(tiny_tokenizer, messages)
    assert input_ids == chat_ids(tiny_tokenizer, messages)


def test_derived_slots_of_a_chatml_template(tiny_tokenizer: Any) -> None:
    template = derive(tiny_tokenizer)
    assert template.fill("user", "hi") == ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"]
    assert template.fill("assistant", "yo") == ["yo<|im_end|>\n"]
    assert template.options.default_system == "" and template.options.kind == "plain"


def test_default_system_is_rendered_and_tokenized(tiny_tokenizer: Any) -> None:
    input_ids, _ = tokenize(tiny_tokenizer, SINGLE, default_system="Answer in one word.")
    assert input_ids == chat_ids(tiny_tokenizer, [{"role": "system", "content": "Answer in one word."}] + SINGLE)


def test_labels_keep_assistant_turns_with_their_end_of_turn_tokens(tiny_tokenizer: Any) -> None:
    input_ids, labels = tokenize(tiny_tokenizer, MULTI)
    assert len(labels) == len(input_ids)
    trained = tiny_tokenizer.decode([t for t in labels if t != IGNORE_INDEX])
    assert trained == "chat<|im_end|>\nchien<|im_end|>\noiseau<|im_end|>\n"
    for token, label in zip(input_ids, labels):
        assert label in (IGNORE_INDEX, token)


def test_train_on_prompt_labels_every_token(tiny_tokenizer: Any) -> None:
    input_ids, labels = tokenize(tiny_tokenizer, MULTI, train_on_prompt=True)
    assert labels == input_ids


def test_mask_history_labels_only_the_last_assistant_turn(tiny_tokenizer: Any) -> None:
    input_ids, labels = tokenize(tiny_tokenizer, MULTI, mask_history=True)
    assert input_ids == chat_ids(tiny_tokenizer, MULTI)
    assert tiny_tokenizer.decode([t for t in labels if t != IGNORE_INDEX]) == "oiseau<|im_end|>\n"


def test_cutoff_truncation_is_counted_in_the_report(tiny_tokenizer: Any) -> None:
    report = DataReport(datasets=[DatasetReport(name="demo")])
    full = len(chat_ids(tiny_tokenizer, MULTI))
    columns = tokenize_records([record_of(MULTI), record_of(SINGLE)], tiny_tokenizer,
                               DataSection(cutoff_len=full - 3), report)
    stats = report.datasets[0]
    assert len(columns["input_ids"][0]) == full - 3
    assert stats.truncated == 1
    assert stats.tokens == sum(len(ids) for ids in columns["input_ids"])


def test_smollm2_slots_are_encoded_one_by_one(tiny_tokenizer: Any) -> None:
    install(tiny_tokenizer, "smollm2")
    input_ids, _ = tokenize(tiny_tokenizer, SINGLE, template="smollm2")
    slots = [f"<|im_start|>system\n{SMOLLM2_SYSTEM}<|im_end|>\n",
             f"<|im_start|>user\n{SINGLE[0]['content']}<|im_end|>\n<|im_start|>assistant\n",
             f"{SINGLE[1]['content']}<|im_end|>\n"]
    assert input_ids == [i for slot in slots for i in tiny_tokenizer.encode(slot, add_special_tokens=False)]


def test_smollm2_uses_the_given_system_instead_of_the_default(tiny_tokenizer: Any) -> None:
    install(tiny_tokenizer, "smollm2")
    text = tiny_tokenizer.apply_chat_template(MULTI[:2], tokenize=False)
    assert text.startswith("<|im_start|>system\nAnswer in one word.<|im_end|>\n<|im_start|>user\n")
    assert "SmolLM" not in text


def test_efficient_eos_templates_end_with_one_trained_eos(tiny_tokenizer: Any) -> None:
    install(tiny_tokenizer, "fewshot")
    input_ids, labels = tokenize(tiny_tokenizer, MULTI, template="fewshot")
    eos = tiny_tokenizer.eos_token_id
    assert input_ids[-1] == eos and labels[-1] == eos
    assert input_ids.count(eos) == 1
    # each later prompt's first label is the EOS that closes the previous answer
    assert sum(1 for label in labels if label == eos) == 1 + 2


def test_train_on_prompt_with_an_efficient_eos_template_is_refused(tiny_tokenizer: Any) -> None:
    install(tiny_tokenizer, "glm4")
    with pytest.raises(DataError, match="train_on_prompt"):
        tokenize(tiny_tokenizer, SINGLE, template="glm4", train_on_prompt=True)


def test_replace_eos_templates_make_the_stop_word_the_eos(tiny_tokenizer: Any) -> None:
    install(tiny_tokenizer, "phi")
    assert tiny_tokenizer.eos_token == "<|end|>"


def test_reasoning_template_adds_an_empty_thought(tiny_tokenizer: Any) -> None:
    install(tiny_tokenizer, "qwen3")
    thought = tiny_tokenizer.encode("<think>\n\n</think>\n\n", add_special_tokens=False)
    trained_ids, trained_labels = tokenize(tiny_tokenizer, SINGLE, template="qwen3", enable_thinking=True)
    masked_ids, masked_labels = tokenize(tiny_tokenizer, SINGLE, template="qwen3", enable_thinking=False)
    assert trained_ids == masked_ids
    start = len(trained_ids) - len(tiny_tokenizer.encode("Paris is the capital of France.<|im_end|>\n",
                                                         add_special_tokens=False)) - len(thought)
    assert trained_labels[start:start + len(thought)] == thought
    assert masked_labels[start:start + len(thought)] == [IGNORE_INDEX] * len(thought)


def test_unknown_template_suggests_and_lists() -> None:
    with pytest.raises(DataError, match="unknown template 'smolm2'; did you mean smollm2"):
        load_named("smolm2")


def test_composed_template_carries_the_default_system() -> None:
    assert SMOLLM2_SYSTEM in composed_jinja("smollm2")
