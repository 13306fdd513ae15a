"""Render conversations with the tokenizer's chat template: what chat, predict and the API feed the model.

The template installed in the tokenizer (data.chat_template.install) renders the same slots training encodes.
"""

from __future__ import annotations

from tunelab.data.tokenizer import Tokenizer

ChatMessage = dict[str, object]  # a Hugging Face chat message: role, content, and tool_calls where there are some
ToolSpec = dict[str, object]  # a tool's JSON schema, as chat templates take it


def generation_prompt(tokenizer: Tokenizer, messages: list[ChatMessage],
                      tools: list[ToolSpec] | None = None) -> tuple[str, list[int]]:
    """The text and token ids the model continues: the messages (and tools) through the chat template, ending
    with the generation prompt. The text carries its own special tokens, so none are added around it (what
    apply_chat_template(tokenize=True) gives; adding them again would double a BOS)."""
    text = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
    return text, list(tokenizer(text, add_special_tokens=False)["input_ids"])
