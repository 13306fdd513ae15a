"""Render conversations with the tokenizer's own chat template, split into (prompt, response) text pairs.

The tokenizer's Jinja template is the single source of truth: the pairs concatenate to exactly what
`tokenizer.apply_chat_template(messages)` renders, which is what chat, predict and the API feed the model.
"""

from __future__ import annotations

from typing import Any

from tunelab.data.errors import DataError


def render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """The template's text for these messages."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def generation_prompt(tokenizer: Any, messages: list[dict[str, Any]],
                      tools: list[dict[str, Any]] | None = None) -> tuple[str, list[int]]:
    """The text and token ids the model continues: the messages (and tools) through the chat template, ending
    with the generation prompt. The text carries its own special tokens, so none are added around it (what
    apply_chat_template(tokenize=True) gives; adding them again would double a BOS)."""
    text = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
    return text, list(tokenizer(text, add_special_tokens=False)["input_ids"])


def pair_texts(tokenizer: Any, messages: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(prompt text, response text) for each assistant turn, in order.

    The prompt of turn k is what the template adds between the end of response k-1 and the start of
    response k (system, user turn, generation prompt); the response is the assistant text with the
    template's end-of-turn tokens.
    """
    pairs = []
    done = ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix = render(tokenizer, messages[:index], add_generation_prompt=True)
        full = render(tokenizer, messages[: index + 1])
        if not prefix.startswith(done) or not full.startswith(prefix):
            raise DataError("the chat template does not render this conversation turn by turn (an earlier turn "
                            "renders differently once later turns follow)", fix="use a template without history "
                            "rewriting, e.g. template: chatml")
        pairs.append((prefix[len(done):], full[len(prefix):]))
        done = full
    return pairs
