"""Read a Jinja chat template's shape off its own renderings: the text around each role's content.

Marker conversations are rendered with `tokenizer.apply_chat_template(..., tokenize=False,
add_generation_prompt=True)`; cutting each rendering at the markers gives the text before the first message, the
gaps between consecutive messages, and the generation prompt after the last user turn. Nothing comes from a table
of families: a template is whatever its renderings show, and ollama.py then checks the Go template built from the
shape against the Jinja renderings of varied conversations.

The BOS rule: when the tokenizer adds BOS on a plain encode (`tokenizer("a")["input_ids"][0] == bos_token_id`), the
GGUF writer sets add_bos_token, llama.cpp and Ollama prepend BOS themselves, so a leading bos_token text is cut
from every Jinja rendering (and left out of the Go template); otherwise it is kept as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tunelab.export.errors import ExportError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Message = dict[str, str]
MARKS = {"system": "SYSMARKq7", "user1": "USRMARKq7a", "assistant1": "ASTMARKq7a", "user2": "USRMARKq7b"}


@dataclass(frozen=True)
class ChatShape:
    """What a template writes around message contents, for conversations that alternate user and assistant.

    head_system is None when the template has no system role (it raises on one, or drops it)."""

    head_user: str
    head_system: str | None
    system_gap: str
    user_gap: str
    assistant_gap: str
    tail: str
    default_system: str


def adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the tokenizer puts BOS in front of a plain encode (and so llama.cpp will, from the GGUF)."""
    ids = tokenizer("a")["input_ids"]
    return tokenizer.bos_token_id is not None and bool(ids) and ids[0] == tokenizer.bos_token_id


def jinja_prompt(tokenizer: PreTrainedTokenizerBase, messages: list[Message]) -> str:
    """The Jinja rendering with the generation prompt, after the BOS rule."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    bos = tokenizer.bos_token
    if bos and adds_bos(tokenizer) and text.startswith(bos):
        text = text[len(bos):]
    return text


def cut(text: str, marks: list[str], what: str) -> list[str]:
    """The text before, between and after the markers; each must appear once, in order."""
    pieces, rest = [], text
    for mark in marks:
        if text.count(mark) != 1 or mark not in rest:
            raise ExportError(f"{what}: the chat template does not write each message's content once and in order "
                              f"(marker {mark!r} in {text!r}); it cannot be expressed as an Ollama TEMPLATE")
        before, rest = rest.split(mark, 1)
        pieces.append(before)
    return pieces + [rest]


def try_render(tokenizer: PreTrainedTokenizerBase, messages: list[Message]) -> str | None:
    """The rendering, or None when the template refuses the conversation (raise_exception, as Gemma's does)."""
    from jinja2 import TemplateError

    try:
        return jinja_prompt(tokenizer, messages)
    except TemplateError:
        return None


def read_shape(tokenizer: PreTrainedTokenizerBase, name: str, default_system: str | None = None) -> ChatShape:
    """The shape of the tokenizer's chat template, from marker conversations; `name` is used in errors.

    With a run's default_system, head_user is what a conversation without a system message starts with in
    training: the template rendered with that system message."""
    if not tokenizer.chat_template:
        raise ExportError(f"{name}: the tokenizer has no chat template; set template: NAME in the run's config")
    turns = [msg("user", MARKS["user1"]), msg("assistant", MARKS["assistant1"]), msg("user", MARKS["user2"])]
    plain = try_render(tokenizer, turns)
    if plain is None:
        raise ExportError(f"{name}: the chat template refuses a plain user/assistant/user conversation")
    head_user, user_gap, assistant_gap, tail = cut(plain, [m["content"] for m in turns], name)
    with_system = try_render(tokenizer, [msg("system", MARKS["system"]), *turns])
    if with_system is None or MARKS["system"] not in with_system:
        return ChatShape(head_user, None, "", user_gap, assistant_gap, tail, "")
    head_system, system_gap, *_ = cut(with_system, [MARKS["system"], MARKS["user1"]], name)
    default = ""
    if head_user.startswith(head_system) and head_user.endswith(system_gap) and \
            len(head_user) > len(head_system) + len(system_gap):
        default = head_user[len(head_system):len(head_user) - len(system_gap)]
    if default_system is not None:
        run_head = try_render(tokenizer, [msg("system", default_system), *turns])
        head_user = cut(run_head or "", [m["content"] for m in turns], name)[0]
    return ChatShape(head_user, head_system, system_gap, user_gap, assistant_gap, tail, default)


def msg(role: str, content: str) -> Message:
    """One chat message."""
    return {"role": role, "content": content}
