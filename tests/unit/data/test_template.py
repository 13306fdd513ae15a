"""One chat-template source: training-time rendering and token ids equal tokenizer.apply_chat_template."""

from __future__ import annotations

from typing import Any

import pytest

from tunelab.config.schema import DataSection
from tunelab.data.errors import DataError
from tunelab.data.pipeline import DataReport, tokenize_records
from tunelab.data.records import Sample, DatasetReport, Message
from tunelab.data.template import pair_texts
from tunelab.data.tokenize import IGNORE_INDEX
from tunelab.model.load import template_text

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


def record_of(messages: list[dict[str, str]], dataset: str = "demo", row: int = 1) -> Sample:
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    turns = tuple(Message(m["role"], m["content"]) for m in messages if m["role"] != "system")  # type: ignore[arg-type]
    return Sample.chat(messages=turns, dataset=dataset, row=row, system=system)


def tokenize(tokenizer: Any, messages: list[dict[str, str]], **values: Any) -> tuple[list[int], list[int]]:
    report = DataReport(datasets=[DatasetReport(name="demo")])
    columns = tokenize_records([record_of(messages)], tokenizer, DataSection(**values), report)
    return columns["input_ids"][0], columns["labels"][0]


def chat_ids(tokenizer: Any, messages: list[dict[str, str]], **kwargs: Any) -> list[int]:
    return tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False, **kwargs)


@CONVERSATIONS
def test_pair_texts_concatenate_to_the_chat_template_rendering(tiny_tokenizer: Any,
                                                               messages: list[dict[str, str]]) -> None:
    pairs = pair_texts(tiny_tokenizer, messages)
    assert len(pairs) == sum(m["role"] == "assistant" for m in messages)
    assert "".join(p + r for p, r in pairs) == tiny_tokenizer.apply_chat_template(messages, tokenize=False)


def test_pair_texts_split_prompt_and_response_at_the_generation_prompt(tiny_tokenizer: Any) -> None:
    assert pair_texts(tiny_tokenizer, MULTI[:5]) == [
        ("<|im_start|>system\nAnswer in one word.<|im_end|>\n<|im_start|>user\nTranslate to French: cat<|im_end|>\n"
         "<|im_start|>assistant\n", "chat<|im_end|>\n"),
        ("<|im_start|>user\nAnd dog?<|im_end|>\n<|im_start|>assistant\n", "chien<|im_end|>\n"),
    ]


@CONVERSATIONS
def test_pipeline_token_ids_equal_apply_chat_template(tiny_tokenizer: Any, messages: list[dict[str, str]]) -> None:
    input_ids, _ = tokenize(tiny_tokenizer, messages)
    assert input_ids == chat_ids(tiny_tokenizer, messages)


@CONVERSATIONS
def test_pipeline_token_ids_equal_apply_chat_template_with_smollm2(tiny_tokenizer: Any,
                                                                   messages: list[dict[str, str]]) -> None:
    tiny_tokenizer.chat_template = template_text("smollm2")
    input_ids, _ = tokenize(tiny_tokenizer, messages)
    assert input_ids == chat_ids(tiny_tokenizer, messages)


def test_default_system_is_rendered_and_tokenized(tiny_tokenizer: Any) -> None:
    input_ids, _ = tokenize(tiny_tokenizer, SINGLE, default_system="Answer in one word.")
    assert input_ids == chat_ids(tiny_tokenizer, [{"role": "system", "content": "Answer in one word."}] + SINGLE)


def test_labels_keep_assistant_turns_with_their_end_of_turn_tokens(tiny_tokenizer: Any) -> None:
    input_ids, labels = tokenize(tiny_tokenizer, MULTI)
    assert len(labels) == len(input_ids)
    trained = tiny_tokenizer.decode([t for t in labels if t != IGNORE_INDEX])
    assert trained == "chat<|im_end|>\nchien<|im_end|>\noiseau<|im_end|>\n"
    masked_prompt = tiny_tokenizer.decode([t for t, lab in zip(input_ids, labels) if lab == IGNORE_INDEX])
    assert masked_prompt == tiny_tokenizer.apply_chat_template(MULTI, tokenize=False).replace(
        "chat<|im_end|>\n", "").replace("chien<|im_end|>\n", "").replace("oiseau<|im_end|>\n", "")
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
    assert report.examples_without_trained_tokens == 0


def test_prompt_tokens_equal_what_inference_feeds_the_model(tiny_tokenizer: Any) -> None:
    """A response starting with spaces: the prompt part still tokenizes as chat/predict tokenize the prompt."""
    messages = [{"role": "user", "content": "Write a poem about the sea."},
                {"role": "assistant", "content": "   more indented\nline one"}]
    input_ids, labels = tokenize(tiny_tokenizer, messages)
    prompt = chat_ids(tiny_tokenizer, messages[:1], add_generation_prompt=True)
    assert input_ids[:len(prompt)] == prompt
    assert labels[:len(prompt)] == [IGNORE_INDEX] * len(prompt)
    assert tiny_tokenizer.decode(input_ids) == tiny_tokenizer.apply_chat_template(messages, tokenize=False)


def test_a_template_that_rewrites_earlier_turns_is_refused(tiny_tokenizer: Any) -> None:
    # renders only the last assistant turn's content, like templates that strip earlier reasoning
    tiny_tokenizer.chat_template = (
        "{%- for m in messages -%}<|im_start|>{{ m['role'] }}\n"
        "{%- if m['role'] == 'assistant' and not loop.last %}(earlier){% else %}{{ m['content'] }}{% endif -%}"
        "<|im_end|>\n{%- endfor -%}{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}")
    report = DataReport(datasets=[DatasetReport(name="demo")])
    with pytest.raises(DataError) as excinfo:
        tokenize_records([record_of(MULTI, row=7)], tiny_tokenizer, DataSection(), report)
    message = str(excinfo.value)
    assert message.startswith("dataset 'demo', row 7: the chat template does not render this conversation turn "
                              "by turn")
    assert message.endswith("use a template without history rewriting, e.g. template: chatml")


def llamafactory_smollm2_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """LLaMA-Factory 0.9.5 `smollm2`: slots encoded one by one (system with the first user turn)."""
    system = messages[0]["content"] if messages[0]["role"] == "system" else SMOLLM2_SYSTEM
    turns = [m for m in messages if m["role"] != "system"]
    out: list[int] = []
    for index, message in enumerate(turns):
        slots = [f"<|im_start|>system\n{system}<|im_end|>\n"] if index == 0 else []
        if message["role"] == "user":
            slots.append(f"<|im_start|>user\n{message['content']}<|im_end|>\n<|im_start|>assistant\n")
        else:
            slots.append(f"{message['content']}<|im_end|>\n")
        for slot in slots:
            out += tokenizer.encode(slot, add_special_tokens=False)
    return out


@CONVERSATIONS
def test_smollm2_gives_llamafactory_tokens(tiny_tokenizer: Any, messages: list[dict[str, str]]) -> None:
    tiny_tokenizer.chat_template = template_text("smollm2")
    input_ids, _ = tokenize(tiny_tokenizer, messages)
    assert input_ids == llamafactory_smollm2_ids(tiny_tokenizer, messages)


def test_smollm2_renders_llamafactory_default_system(tiny_tokenizer: Any) -> None:
    tiny_tokenizer.chat_template = template_text("smollm2")
    text = tiny_tokenizer.apply_chat_template(SINGLE[:1], tokenize=False, add_generation_prompt=True)
    assert text == (f"<|im_start|>system\n{SMOLLM2_SYSTEM}<|im_end|>\n<|im_start|>user\n"
                    "What is the capital of France?<|im_end|>\n<|im_start|>assistant\n")


def test_smollm2_uses_the_given_system_instead_of_the_default(tiny_tokenizer: Any) -> None:
    tiny_tokenizer.chat_template = template_text("smollm2")
    text = tiny_tokenizer.apply_chat_template(MULTI[:2], tokenize=False)
    assert text.startswith("<|im_start|>system\nAnswer in one word.<|im_end|>\n<|im_start|>user\n")
    assert "SmolLM" not in text


def test_chatml_has_no_default_system(tiny_tokenizer: Any) -> None:
    assert tiny_tokenizer.apply_chat_template(SINGLE[:1], tokenize=False) == (
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n")
