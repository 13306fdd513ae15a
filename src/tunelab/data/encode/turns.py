"""Conversations -> (prompt ids, response ids) per turn, exactly as LLaMA-Factory 0.9.5 encodes them.

Each message becomes a list of elements (its role's slot filled with its content; the first message also
gets the template's prefix and the system prompt with the tool descriptions); text elements are tokenized
one by one without special tokens, markers become the BOS/EOS id or a named token's id. All texts of a
batch of conversations go through the tokenizer in one call. Every kind's encoder (data/encode/) builds on this.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tunelab.data.chat_template import BOS, EOS, TOKEN, ChatTemplate
from tunelab.data.errors import DataError
from tunelab.data.examples import Context, Message, Supervised
from tunelab.data.tokenizer import Tokenizer
from tunelab.text.tool_text import function_text, tools_text

Turn = tuple[list[int], list[int]]  # (prompt ids, response ids) of one turn
Conversation = tuple[Context, tuple[Message, ...]]  # an example's context and the messages to encode


@dataclass(frozen=True)
class EncodeOptions:
    """The data-section keys that change how examples are encoded."""

    default_system: str | None = None
    enable_thinking: bool | None = True
    preserve_thinking: bool = False
    mask_history: bool = False


def tool_error(exc: ValueError, field: str) -> DataError:
    """A tool-text problem as a data error on the field it came from."""
    return DataError(str(exc), field=field, fix="write valid JSON in the format LLaMA-Factory documents",
                     kind=f"invalid {field}")


def message_elements(template: ChatTemplate, messages: list[Message], system: str, tools: str) -> list[list[str]]:
    """The elements of each message (LLaMA-Factory's Template._encode and Llama2Template._encode)."""
    options = template.options
    llama2 = options.kind == "llama2"
    encoded = []
    for index, message in enumerate(messages):
        elements: list[str] = []
        first_user = ""
        if index == 0:
            elements += template.fill("prefix")
            if system or tools:
                try:
                    tool_text = tools_text(options.tool_format, tools) if tools else ""
                except ValueError as exc:
                    raise tool_error(exc, "tools") from None
                if llama2:
                    first_user = template.fill("system", system + tool_text)[0]
                else:
                    elements += template.fill("system", system + tool_text)
        content = message.content
        if message.role == "user":
            elements += template.fill("user", first_user + content)
        elif message.role == "function":
            words = (None, None) if llama2 else (options.thought_words, options.tool_call_words)
            try:
                elements += template.fill("function", function_text(options.tool_format, content, *words))
            except ValueError as exc:
                raise tool_error(exc, "function_call") from None
        else:
            elements += template.fill(message.role, content)
        encoded.append(elements)
    return encoded


def remove_thought(template: ChatTemplate, content: str) -> str:
    """An answer without its thought (LLaMA-Factory's remove_thought)."""
    start, end = template.options.thought_words
    return re.sub(f"{re.escape(start)}(.*?){re.escape(end)}", "", content, flags=re.DOTALL).lstrip("\n")


def reasoning_messages(template: ChatTemplate, messages: list[Message], options: EncodeOptions) -> list[Message]:
    """Thoughts removed where LLaMA-Factory's ReasoningTemplate.encode_multiturn removes them."""
    discard_history = options.mask_history and not options.preserve_thinking
    out = list(messages)
    for index in range(1, len(out), 2):
        drop = options.enable_thinking is False or (discard_history and index < len(out) - 2)
        if drop:
            out[index] = Message(out[index].role, remove_thought(template, out[index].content))
    return out


def has_thought(template: ChatTemplate, content: str) -> bool:
    """Whether an answer already carries (part of) a thought."""
    start, end = template.options.thought_words
    return start.strip() in content or end.strip() in content


def batch_ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    """`tokenizer(texts, add_special_tokens=False)["input_ids"]`, straight from the Rust tokenizer when there is one
    (the same ids, without building offsets and BatchEncodings)."""
    import tokenizers

    backend = getattr(tokenizer, "_tokenizer", None)
    if not isinstance(backend, tokenizers.Tokenizer):
        return tokenizer(texts, add_special_tokens=False)["input_ids"]
    split = bool(getattr(tokenizer, "split_special_tokens", False))
    if backend.encode_special_tokens != split:  # as transformers sets it before encoding
        backend.encode_special_tokens = split
    return [encoding.ids for encoding in backend.encode_batch_fast(texts, add_special_tokens=False)]


def one_turn(turns: list[Turn]) -> Turn:
    """Every turn but the last answer as the prompt (LLaMA-Factory's encode_oneturn)."""
    prompt = [t for source, target in turns[:-1] for t in source + target] + turns[-1][0]
    return prompt, turns[-1][1]


class Encoder:
    """Encodes conversations with one template and tokenizer; texts are tokenized in batches."""

    def __init__(self, tokenizer: Tokenizer, template: ChatTemplate, options: EncodeOptions) -> None:
        self.tokenizer, self.template, self.options = tokenizer, template, options
        self.system = options.default_system if options.default_system is not None else \
            template.options.default_system
        self.thought_ids: list[int] | None = None

    @property
    def answer_eos(self) -> list[int]:
        """The EOS that ends each answer when the template ends an example with a single one (efficient_eos)."""
        return [self.tokenizer.eos_token_id] if self.template.options.efficient_eos else []

    def messages(self, messages: tuple[Message, ...]) -> list[Message]:
        """The messages as they are encoded (reasoning templates drop thoughts where LLaMA-Factory does)."""
        if self.template.options.kind == "reasoning":
            return reasoning_messages(self.template, list(messages), self.options)
        return list(messages)

    def element_lists(self, example: Supervised, messages: list[Message] | None = None) -> list[list[str]]:
        """The elements of each message of a supervised example (messages: as self.messages gives them)."""
        messages = self.messages(example.messages) if messages is None else messages
        return self.elements_of(example, messages)

    def elements_of(self, context: Context, messages: list[Message]) -> list[list[str]]:
        """The elements of each message, with the example's system prompt and tools."""
        return message_elements(self.template, messages, context.system or self.system, context.tools)

    def located(self, context: Context, messages: list[Message]) -> list[list[str]]:
        """elements_of, with errors naming the example's dataset and row."""
        try:
            return self.elements_of(context, messages)
        except DataError as exc:
            raise DataError(exc.problem, dataset=context.dataset, row=context.row, field=exc.field, fix=exc.fix,
                            kind=exc.kind) from None
    def ids_of(self, element_lists: list[list[list[str]]]) -> list[list[list[int]]]:
        """Token ids of every message of every conversation; all texts tokenized in one call."""
        texts = sorted({e for lists in element_lists for elements in lists for e in elements
                        if e and e not in (BOS, EOS) and not e.startswith(TOKEN)})
        encoded = batch_ids(self.tokenizer, texts) if texts else []
        table = dict(zip(texts, encoded))
        return [[self.convert(elements, table) for elements in lists] for lists in element_lists]

    def convert(self, elements: list[str], table: dict[str, list[int]]) -> list[int]:
        """One message's elements -> ids."""
        ids: list[int] = []
        tokenizer = self.tokenizer
        for element in elements:
            if element == BOS:
                ids += [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
            elif element == EOS:
                ids += [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
            elif element.startswith(TOKEN):
                ids.append(tokenizer.convert_tokens_to_ids(element[len(TOKEN):]))
            elif element:
                ids += table[element]
        return ids

    def turns(self, conversations: list[Conversation], last_only: bool = False) -> list[list[Turn]]:
        """(prompt ids, response ids) of every turn of every conversation; last_only: an empty thought goes only
        into the last answer (reasoning templates, LLaMA-Factory's encode_oneturn)."""
        messages = [self.messages(turns) for _, turns in conversations]
        messages_ids = self.ids_of([self.located(context, m) for (context, _), m in zip(conversations, messages)])
        out = []
        for turns, encoded in zip(messages, messages_ids):
            if self.template.options.kind == "reasoning":
                self.add_empty_thoughts(turns, encoded, last_only)
            out.append([(encoded[i], encoded[i + 1]) for i in range(0, len(encoded) - 1, 2)])
        return out

    def add_empty_thoughts(self, messages: list[Message], encoded: list[list[int]], last_only: bool = False) -> None:
        """An empty thought for answers without one: trained with enable_thinking, else part of the prompt."""
        if self.thought_ids is None:
            self.thought_ids = self.tokenizer.encode("".join(self.template.options.thought_words),
                                                     add_special_tokens=False)
        discard_history = self.options.mask_history and not self.options.preserve_thinking
        turns = [len(messages) - 2] if discard_history or last_only else range(0, len(messages) - 1, 2)
        for i in turns:
            if has_thought(self.template, messages[i + 1].content):
                continue
            if not self.options.enable_thinking:
                encoded[i] += self.thought_ids
            else:
                encoded[i + 1] = self.thought_ids + encoded[i + 1]


def answer_pairs(encoder: Encoder,
                 examples: Sequence[tuple[Context, tuple[Message, ...], Message, Message]]) -> list[tuple[Turn, Turn]]:
    """(prompt ids, answer ids) of each example's prompt with each of its two answers (pairs: chosen and rejected;
    KTO: the answer and its KL partner's), encoded as one turn in one batch."""
    conversations = [(context, prompt + (answer,)) for context, prompt, first, second in examples
                     for answer in (first, second)]
    turns = encoder.turns(conversations, last_only=True)
    return [(one_turn(turns[i]), one_turn(turns[i + 1])) for i in range(0, len(turns), 2)]
