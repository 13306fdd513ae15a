"""Chat templates as slots: what each role's turn looks like, element by element.

A named template is a file in tunelab/templates (Jinja macros `format_user`, `format_assistant`, ... and its
options in a `{#- tunelab {...} -#}` comment). The same file gives both views of it:

- Hugging Face's: the composed Jinja chat template (shared head + the file + shared body) installed in the
  tokenizer, which chat, predict, the API and exported models render;
- the encoder's: each macro rendered once with a placeholder, giving the slot's elements (text, BOS, EOS, a
  token by name), which `data.encode` tokenizes element by element exactly as LLaMA-Factory does.

Without a named template the slots are read off the model's own chat template by rendering probe
conversations (LLaMA-Factory's `parse_template`), so both tools train on the same tokens.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Literal

from tunelab.config.templates import template_names
from tunelab.data.errors import DataError
from tunelab.data.tokenizer import Tokenizer

if TYPE_CHECKING:  # imported where used: the CLI starts without loading jinja2 or transformers
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from transformers import PreTrainedTokenizerBase

SEP = "\x1f"  # between elements
BOS, EOS, TOKEN = "\x02bos", "\x02eos", "\x02token:"  # element markers: the tokenizer's BOS/EOS id, a token by name
CONTENT = "\x03"  # where the content goes in a slot's elements

Slot = tuple[str, ...]
OPTIONS_RE = re.compile(r"\{#-?\s*tunelab\s+(\{.*?\})\s*-?#\}", re.DOTALL)
MACRO_RE = re.compile(r"macro\s+format_(\w+)\s*\(")
ROLES = ("prefix", "system", "user", "assistant", "function", "observation")


@dataclass(frozen=True)
class Options:
    """What a template does besides its slots (LLaMA-Factory's register_template arguments)."""

    default_system: str = ""
    stop_words: tuple[str, ...] = ()
    efficient_eos: bool = False
    replace_eos: bool = False
    kind: Literal["plain", "llama2", "reasoning"] = "plain"
    tool_format: str = "default"
    thought_words: tuple[str, str] = ("<think>\n", "\n</think>\n\n")
    tool_call_words: tuple[str, str] = ("<tool_call>", "</tool_call>")


@dataclass(frozen=True)
class ChatTemplate:
    """A template's slots and options; `name` is None when read off the model's own chat template."""

    name: str | None
    options: Options
    slots: dict[str, Slot] = field(hash=False)

    def fill(self, role: str, content: str = "") -> list[str]:
        """The elements of one turn: the slot with the content in place (LLaMA-Factory's formatter.apply)."""
        return [element.replace(CONTENT, content, 1) for element in self.slots[role]]

    def with_tool_format(self, tool_format: str) -> ChatTemplate:
        """The `tool_format` override: function calls in a plain slot (content, then EOS unless efficient_eos)."""
        slots = dict(self.slots, function=(CONTENT,) if self.options.efficient_eos else (CONTENT, EOS))
        options = Options(**{**self.options.__dict__, "tool_format": tool_format})
        return ChatTemplate(self.name, options, slots)


def resource(name: str) -> str:
    """The text of a file in tunelab/templates."""
    return resources.files("tunelab.templates").joinpath(name).read_text(encoding="utf-8")


def template_source(name: str) -> str:
    """A named template's own file; an unknown name is an error listing the known ones."""
    names = template_names()
    if name not in names:
        from tunelab.runtime.suggest import suggest

        raise DataError(f"unknown template {name!r}{suggest(name, names)}", field="template",
                        fix=f"use one of: {', '.join(names)}, or leave template out to use the model's own")
    return resource(f"{name}.jinja")


def template_options(source: str) -> Options:
    """The options comment of a template file."""
    match = OPTIONS_RE.search(source)
    raw = json.loads(match.group(1)) if match else {}
    return Options(**{key: tuple(value) if isinstance(value, list) else value for key, value in raw.items()})


def missing_defaults(source: str, options: Options) -> str:
    """Macros for the roles a template file leaves out, as LLaMA-Factory's register_template defaults them."""
    defined = set(MACRO_RE.findall(source))
    eos = "" if options.efficient_eos else "{{ S }}{{ eos() }}"
    defaults = {"assistant": "{{ content }}" + eos, "function": "{{ format_assistant(content) }}",
                "observation": "{{ format_user(content) }}"}
    return "".join("{%- macro format_" + role + "(content) -%}" + body + "{%- endmacro -%}\n"
                   for role, body in defaults.items() if role not in defined)


def jinja_literal(text: str) -> str:
    """A Jinja string literal."""
    return json.dumps(text, ensure_ascii=False)


@lru_cache(maxsize=64)
def composed_jinja(name: str) -> str:
    """The Hugging Face chat template of a named template: shared head, the file, defaults, settings, body."""
    source = template_source(name)
    options = template_options(source)
    settings = (f"{{%- set tunelab_default_system = {jinja_literal(options.default_system)} -%}}\n"
                f"{{%- set tunelab_kind = {jinja_literal(options.kind)} -%}}\n"
                f"{{%- set tunelab_empty_thought = {jinja_literal(''.join(options.thought_words))} -%}}\n")
    return resource("_header.jinja") + source + missing_defaults(source, options) + settings + resource("_body.jinja")


def jinja_environment() -> ImmutableSandboxedEnvironment:
    """The sandboxed Jinja environment Hugging Face renders chat templates in."""
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])


def split_slot(rendered: str) -> Slot:
    """A macro's output in element mode -> its non-empty elements."""
    return tuple(element for element in rendered.split(SEP) if element)


@lru_cache(maxsize=64)
def load_named(name: str) -> ChatTemplate:
    """A shipped template's slots, read by rendering each of its macros once in element mode."""
    source = composed_jinja(name)
    module = jinja_environment().from_string(source).make_module(
        {"tunelab_sep": SEP, "tunelab_bos": BOS, "tunelab_eos": EOS, "tunelab_token": TOKEN})
    slots = {role: split_slot(str(getattr(module, f"format_{role}")() if role == "prefix"
                                  else getattr(module, f"format_{role}")(CONTENT))) for role in ROLES}
    return ChatTemplate(name, template_options(template_source(name)), slots)


def find_diff(short: str, long: str) -> str:
    """The characters of `long` that are not in `short` (LLaMA-Factory's alignment, kept as it is)."""
    i = j = 0
    diff = []
    while i < len(short) and j < len(long):
        if short[i] == long[j]:
            i += 1
        else:
            diff.append(long[j])
        j += 1
    return "".join(diff)


def derive(tokenizer: Tokenizer) -> ChatTemplate:
    """Slots read off the tokenizer's own chat template by rendering probe conversations (parse_template)."""
    probe = "{{content}}"

    def render(messages: list[dict[str, str]], generation: bool) -> str:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=generation, tokenize=False)

    prefix = tokenizer.decode(tokenizer.encode(""))
    system = render([{"role": "system", "content": probe}], False)[len(prefix):]
    user_empty_system = render([{"role": "system", "content": ""}, {"role": "user", "content": probe}], True)
    user_empty_system = user_empty_system[len(prefix):]
    user = render([{"role": "user", "content": probe}], True)[len(prefix):]
    assistant = render([{"role": "user", "content": probe}, {"role": "assistant", "content": probe}], False)
    assistant = assistant[len(prefix) + len(user):]
    kind = "reasoning" if "<think>" in assistant else "plain"
    assistant = assistant.replace("<think>", "").replace("</think>", "").lstrip("\n")
    default_system = ""
    if len(user) > len(user_empty_system):
        default_system = find_diff(user_empty_system, user)
        user = user[len(system.replace(probe, default_system, 1)):]

    def slot(text: str) -> Slot:
        return (text.replace(probe, CONTENT, 1),)

    slots = {"prefix": (prefix,) if prefix else (), "system": slot(system), "user": slot(user),
             "assistant": slot(assistant), "function": slot(assistant), "observation": slot(user)}
    return ChatTemplate(None, Options(default_system=default_system, kind=kind), slots)


def for_tokenizer(tokenizer: Tokenizer, name: str | None, tool_format: str | None = None) -> ChatTemplate:
    """The template a run encodes with: the named one, or the one read off the model's chat template."""
    template = load_named(name) if name else derive(tokenizer)
    return template.with_tool_format(tool_format) if tool_format else template


def fix_tokenizer(tokenizer: PreTrainedTokenizerBase, template: ChatTemplate) -> list[str]:
    """LLaMA-Factory's special-token fixes: EOS replaced by the first stop word, a pad token, the stop words
    as special tokens. Returns what changed, for the log."""
    changes = []
    stop_words = list(template.options.stop_words)
    if template.options.replace_eos:
        if tokenizer.eos_token != stop_words[0]:
            tokenizer.add_special_tokens({"eos_token": stop_words[0]})
            changes.append(f"eos token set to {stop_words[0]}")
        stop_words = stop_words[1:]
    if tokenizer.eos_token_id is None:
        tokenizer.add_special_tokens({"eos_token": "<|endoftext|>"})
        changes.append("eos token <|endoftext|> added")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
        changes.append(f"pad token set to {tokenizer.eos_token}")
    if stop_words:
        added = tokenizer.add_special_tokens({"extra_special_tokens": stop_words}, replace_extra_special_tokens=False)
        changes.append(f"stop words {', '.join(stop_words)} made special tokens" + (f" ({added} new)" if added else ""))
    return changes


def install(tokenizer: PreTrainedTokenizerBase, name: str | None) -> ChatTemplate:
    """Make the tokenizer render and stop like the template: its chat template, EOS, pad and stop words."""
    if name:
        tokenizer.chat_template = composed_jinja(name)
    template = load_named(name) if name else derive(tokenizer)
    fix_tokenizer(tokenizer, template)
    return template
